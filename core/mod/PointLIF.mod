COMMENT
PointLIF: threshold, spike and reset of a leaky integrate-and-fire point neuron.

Put one in a single-compartment soma whose leak is `pas` (tau_m = cm / g_pas,
rest = e_pas); synaptic input is any current point process there (Exp2Syn for
the driver's point-neuron edges).  Point-neuron templates expose it as
`pointcell` (neurodamus/circuit/point_neurons.py): the driver registers the
cell's gid with NetCon(pointcell, nil), so spikes are the net_event times.

- A spike is emitted (net_event) at the first time step where v > vthresh
  (WATCH, checked every step), unless the cell is refractory.
- During trefrac after a spike, i = grefrac * (v - vreset) clamps v to vreset;
  outside it, i = 0.  With a soma of ~1000 um2 (C ~ 10 pF) and grefrac = 1 uS
  the clamp time constant is 0.01 ms.
- nspikes counts the spikes since INITIAL.

Fixed step only (the clamp is switched by events).  CoreNEURON: WATCH,
net_send and net_event are supported; nothing else is needed.
ENDCOMMENT

NEURON {
    THREADSAFE
    POINT_PROCESS PointLIF
    RANGE vthresh, vreset, trefrac, grefrac, i, refractory, nspikes
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    vthresh = -50 (mV)
    vreset = -65 (mV)
    trefrac = 2 (ms)
    grefrac = 1 (uS)
}

ASSIGNED {
    v (mV)
    i (nA)
    refractory
    nspikes
}

INITIAL {
    refractory = 0
    nspikes = 0
    net_send(0, 1)
}

BREAKPOINT {
    i = refractory * grefrac * (v - vreset)
}

NET_RECEIVE (w) {
    if (flag == 1) {
        WATCH (v > vthresh) 2
    } else if (flag == 2) {
        if (refractory == 0) {
            net_event(t)
            nspikes = nspikes + 1
            refractory = 1
            net_send(trefrac, 3)
        }
    } else if (flag == 3) {
        refractory = 0
    }
}
