COMMENT
KdrHH: delayed-rectifier potassium current, Hodgkin-Huxley formalism (n^4).

Rate functions of Traub & Miles (1991) as used by Pospischil et al. (2008),
threshold parameter vt, given for 36 degC and scaled by
q10^((celsius - 36)/10), q10 = 3.
ENDCOMMENT

NEURON {
    SUFFIX KdrHH
    USEION k READ ek WRITE ik
    RANGE gbar, g, ik, vt
    GLOBAL q10, temp_ref
    THREADSAFE
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    gbar = 0.005 (S/cm2) <0, 1e9>
    vt = -58 (mV)
    q10 = 3
    temp_ref = 36 (degC)
}

ASSIGNED {
    v (mV)
    celsius (degC)
    ek (mV)
    ik (mA/cm2)
    g (S/cm2)
    ninf
    ntau (ms)
}

STATE {
    n
}

INITIAL {
    rates(v)
    n = ninf
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar * n * n * n * n
    ik = g * (v - ek)
}

DERIVATIVE states {
    rates(v)
    n' = (ninf - n) / ntau
}

PROCEDURE rates(v (mV)) {
    LOCAL an, bn, u, qt
    qt = q10 ^ ((celsius - temp_ref) / 10 (degC))
    u = v - vt
    an = 0.032 * efun(15 - u, 5)
    bn = 0.5 * exp((10 - u) / 40)
    ninf = an / (an + bn)
    ntau = 1 / ((an + bn) * qt)
}

: x / (exp(x/y) - 1), continuous at x = 0
FUNCTION efun(x (mV), y (mV)) {
    if (fabs(x / y) < 1e-6) {
        efun = y * (1 - x / y / 2)
    } else {
        efun = x / (exp(x / y) - 1)
    }
}
