COMMENT
ConductanceSource: a single-level series-resistance clamp whose current NEURON
counts as a membrane current (it appears in i_membrane / i_membrane_).

While t < dur1: i = (v - amp1) / rs  (nA, outward positive), i.e. a
conductance 1/rs (uS) with reversal potential amp1 (mV).  Otherwise i = 0.
`rs` may be driven with Vector.play (the driver plays rs = 1/g).
This is SEClamp's single-level behaviour with the opposite sign convention
(SEClamp's i is an electrode current, positive inward).
ENDCOMMENT

NEURON {
    POINT_PROCESS ConductanceSource
    RANGE rs, amp1, dur1, i
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (MOhm) = (megaohm)
}

PARAMETER {
    rs = 1 (MOhm) <1e-9, 1e9>
    amp1 (mV)
    dur1 (ms) <0, 1e9>
}

ASSIGNED {
    v (mV)
    i (nA)
}

INITIAL {
    i = 0
}

BREAKPOINT {
    if (t < dur1) {
        i = (v - amp1) / rs
    } else {
        i = 0
    }
}
