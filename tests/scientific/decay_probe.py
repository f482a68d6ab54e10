"""One ExpSyn conductance decaying through the subnormal range, on NEURON or CoreNEURON,
with or without the driver's flush (run in its own process by test_subnormals.py).

    python -m tests.scientific.decay_probe NEURON|CORENEURON flush|keep OUT.npy
"""

import sys

import numpy as np

TAU = 0.01    # ms: exp(-dt/tau) per step takes g = 1 below 2.2e-308 in ~7 ms
DT = 0.025
TSTOP = 9.0


def record(engine: str):
    from neuron import coreneuron, h

    h.load_file("stdrun.hoc")   # h.cvode
    section = h.Section(name="soma")
    synapse = h.ExpSyn(section(0.5))
    synapse.tau = TAU
    stim = h.NetStim()
    stim.number, stim.start = 1, 1.0
    netcon = h.NetCon(stim, synapse)
    netcon.weight[0], netcon.delay = 1.0, 0.1
    pc = h.ParallelContext()
    pc.set_gid2node(1, pc.id())
    pc.cell(1, h.NetCon(section(0.5)._ref_v, None, sec=section))
    pc.set_maxstep(10)
    h.dt = DT
    h.cvode.cache_efficient(1)
    g = h.Vector()
    g.record(synapse._ref_g)   # per step: the form CoreNEURON records
    coreneuron.enable = engine == "CORENEURON"
    h.finitialize(-65)
    pc.psolve(TSTOP)
    return np.array(g.as_numpy())


def main():
    from neurodamus.subnormals import flush_subnormals

    engine, mode, out = sys.argv[1:4]
    with flush_subnormals(enabled=mode == "flush") as state:
        g = record(engine)
    print(state)
    np.save(out, g)


if __name__ == "__main__":
    main()
