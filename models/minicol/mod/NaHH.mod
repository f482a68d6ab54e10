COMMENT
NaHH: transient sodium current, Hodgkin-Huxley formalism (m^3 h).

Rate functions of the Traub & Miles (1991) hippocampal model in the form used
by Pospischil et al. (2008, Biol Cybern 99:427) for cortical neurons, with
the threshold parameter vt.  Rates are given for 36 degC and scaled by
q10^((celsius - 36)/10), q10 = 3.

TTX: the channel reads the pseudo-ion `ttx` written by the driver's
TTXDynamicsSwitch (ttxo = ttxo_level, ttxi = 1e-12).  The conductance is 0
when ttxo > 1e-11 mM AND ttxi < 1e-11 mM.  The ttxi test is needed because
where no mechanism writes ttx, NEURON (and CoreNEURON) leave both
concentrations at the default of a new ion, 1 mM, which must not block;
setting ttxo0_ttx_ion does not change the value of already inserted ions.
ENDCOMMENT

NEURON {
    SUFFIX NaHH
    USEION na READ ena WRITE ina
    USEION ttx READ ttxo, ttxi VALENCE 1
    RANGE gbar, g, ina, vt
    GLOBAL q10, temp_ref
    THREADSAFE
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
    (mM) = (milli/liter)
}

PARAMETER {
    gbar = 0.05 (S/cm2) <0, 1e9>
    vt = -58 (mV)
    q10 = 3
    temp_ref = 36 (degC)
}

ASSIGNED {
    v (mV)
    celsius (degC)
    ena (mV)
    ttxo (mM)
    ttxi (mM)
    ina (mA/cm2)
    g (S/cm2)
    minf
    hinf
    mtau (ms)
    htau (ms)
}

STATE {
    m
    h
}

INITIAL {
    rates(v)
    m = minf
    h = hinf
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    if (ttxo > 1e-11 && ttxi < 1e-11) {
        g = 0
    } else {
        g = gbar * m * m * m * h
    }
    ina = g * (v - ena)
}

DERIVATIVE states {
    rates(v)
    m' = (minf - m) / mtau
    h' = (hinf - h) / htau
}

PROCEDURE rates(v (mV)) {
    LOCAL am, bm, ah, bh, u, qt
    qt = q10 ^ ((celsius - temp_ref) / 10 (degC))
    u = v - vt
    am = 0.32 * efun(13 - u, 4)
    bm = 0.28 * efun(u - 40, 5)
    ah = 0.128 * exp((17 - u) / 18)
    bh = 4 / (1 + exp((40 - u) / 5))
    minf = am / (am + bm)
    mtau = 1 / ((am + bm) * qt)
    hinf = ah / (ah + bh)
    htau = 1 / ((ah + bh) * qt)
}

: x / (exp(x/y) - 1), continuous at x = 0
FUNCTION efun(x (mV), y (mV)) {
    if (fabs(x / y) < 1e-6) {
        efun = y * (1 - x / y / 2)
    } else {
        efun = x / (exp(x / y) - 1)
    }
}
