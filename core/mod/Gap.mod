COMMENT
Gap: one side of a gap junction (electrical synapse).

i = (v - vgap) * g * 1e-3   (nA, outward positive; g in nS, v and vgap in mV)

vgap is the partner's voltage.  It is a plain RANGE variable, filled every
step by ParallelContext.target_var(gap, gap._ref_vgap, id), with the partner
side published by ParallelContext.source_var.  No POINTER: this works with
threads, MPI and CoreNEURON.
ENDCOMMENT

NEURON {
    POINT_PROCESS Gap
    RANGE g, i, vgap
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (nS) = (nanosiemens)
}

PARAMETER {
    g = 0 (nS)
}

ASSIGNED {
    v (mV)
    vgap (mV)
    i (nA)
}

BREAKPOINT {
    i = (0.001) * ((v - vgap) * g)
}
