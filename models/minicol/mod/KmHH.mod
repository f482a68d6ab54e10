COMMENT
KmHH: slow non-inactivating potassium current (M-type), spike-frequency
adaptation.  First-order gate p, as in Yamada et al. (1989) in the form of
Pospischil et al. (2008):
    pinf = 1 / (1 + exp(-(v + 35)/10))
    ptau = tau_max / (3.3 exp((v + 35)/20) + exp(-(v + 35)/20))
given for 36 degC and scaled by q10^((celsius - 36)/10), q10 = 3.
tau_max is a RANGE parameter (default 200 ms; Pospischil et al. use values
between about 600 and 1000 ms for single-compartment cells).
ENDCOMMENT

NEURON {
    SUFFIX KmHH
    USEION k READ ek WRITE ik
    RANGE gbar, g, ik, tau_max
    GLOBAL q10, temp_ref
    THREADSAFE
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    gbar = 7e-5 (S/cm2) <0, 1e9>
    tau_max = 200 (ms)
    q10 = 3
    temp_ref = 36 (degC)
}

ASSIGNED {
    v (mV)
    celsius (degC)
    ek (mV)
    ik (mA/cm2)
    g (S/cm2)
    pinf
    ptau (ms)
}

STATE {
    p
}

INITIAL {
    rates(v)
    p = pinf
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar * p
    ik = g * (v - ek)
}

DERIVATIVE states {
    rates(v)
    p' = (pinf - p) / ptau
}

PROCEDURE rates(v (mV)) {
    LOCAL qt
    qt = q10 ^ ((celsius - temp_ref) / 10 (degC))
    pinf = 1 / (1 + exp(-(v + 35) / 10))
    ptau = tau_max / (3.3 * exp((v + 35) / 20) + exp(-(v + 35) / 20)) / qt
}
