COMMENT
MembraneCurrentSource: a current injection that NEURON counts as a membrane
current (it appears in i_membrane / i_membrane_), unlike IClamp, which is an
electrode current.

Same parameters as IClamp.  While del <= t < del + dur, i = -amp (a
NONSPECIFIC_CURRENT is outward positive, so a positive amp depolarises, as an
IClamp with the same amp does); otherwise i = 0.  `amp` may be driven with
Vector.play.
ENDCOMMENT

NEURON {
    POINT_PROCESS MembraneCurrentSource
    RANGE del, dur, amp, i
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
}

PARAMETER {
    del (ms)
    dur (ms) <0, 1e9>
    amp (nA)
}

ASSIGNED {
    i (nA)
}

INITIAL {
    i = 0
}

BREAKPOINT {
    if (t < del + dur && t >= del) {
        i = -amp
    } else {
        i = 0
    }
}
