COMMENT
TTXDynamicsSwitch: writes the concentration of the pseudo-ion `ttx` so that
sodium channels that read ttxo can be blocked (TTX application).

ttxo = ttxo_level and ttxi = 1e-12 at INITIAL and at every time step.
ttxo_level is a GLOBAL (hoc: ttxo_level_TTXDynamicsSwitch), default 1e-12
(no block).  The driver's `ttx` modification inserts this mechanism in every
section and sets ttxo_level_TTXDynamicsSwitch = 1.  Channels treat
ttxo > 1e-11 as "blocked".
ENDCOMMENT

NEURON {
    SUFFIX TTXDynamicsSwitch
    USEION ttx WRITE ttxo, ttxi VALENCE 1
    GLOBAL ttxo_level
}

UNITS {
    (mM) = (milli/liter)
}

PARAMETER {
    ttxo_level = 1e-12 (mM)
}

ASSIGNED {
    ttxo (mM)
    ttxi (mM)
}

INITIAL {
    ttxo = ttxo_level
    ttxi = 1e-12
}

BREAKPOINT {
    ttxo = ttxo_level
    ttxi = 1e-12
}
