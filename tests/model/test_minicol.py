"""Tests of the driver's mechanisms (core/mod) and the minicol example model (models/minicol).

The mechanisms are compiled once per module with ``nrnivmodl`` in a temporary folder. Every
simulation runs in its own Python process (NEURON state is process-global) started in that
folder, so ``import neuron`` picks up ``x86_64/libnrnmech.so``. A script prints one JSON line
prefixed with ``RESULT:``; the tests only assert on it.

The templates need nothing but NEURON and the compiled mechanisms (Import3d reads their swc
morphologies): the simulation processes see neither the driver's HOC library nor its Python
package, as with any other SONATA driver.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORE_MOD = REPO / "core" / "mod"
MODEL = REPO / "models" / "minicol"
MORPH_DIR = Path(tempfile.mkdtemp(prefix="minicol-morphologies-"))

CORE_MECHS = ("MembraneCurrentSource", "ConductanceSource", "VecStim", "InhPoissonStim", "Gap",
              "TTXDynamicsSwitch")
MODEL_MECHS = ("NaHH", "KdrHH", "KmHH", "ProbAMPANMDA_EMS", "ProbGABAAB_EMS")


def _nrnivmodl() -> str:
    exe = Path(sys.executable).with_name("nrnivmodl")
    return str(exe) if exe.exists() else (shutil.which("nrnivmodl") or "nrnivmodl")


def build_mechanisms(dest: Path, coreneuron: bool = False) -> float:
    """Compile core/mod + models/minicol/mod into ``dest``; return the build time in s."""
    mods = dest / "mods"
    mods.mkdir(parents=True)
    for folder in (CORE_MOD, MODEL / "mod"):
        for f in sorted(folder.glob("*.mod")):
            shutil.copy(f, mods)
    cmd = [_nrnivmodl()] + (["-coreneuron"] if coreneuron else []) + ["mods"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
    took = time.monotonic() - t0
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return took


@pytest.fixture(scope="module", autouse=True)
def morphologies():
    """One pyramidal and one basket morphology from the example circuit's generator."""
    import numpy as np

    from neurodamus.tools.example import make_morphology, write_swc

    write_swc(MORPH_DIR / "pyr_0.swc", make_morphology(np.random.default_rng(0), True))
    write_swc(MORPH_DIR / "int_0.swc", make_morphology(np.random.default_rng(0), False))
    yield MORPH_DIR
    shutil.rmtree(MORPH_DIR, ignore_errors=True)


def run_sim(libdir: Path, body: str, timeout: float = 120) -> dict:
    """Run ``body`` (Python source) in a fresh process inside ``libdir``; return its RESULT."""
    script = libdir / f"sim_{time.monotonic_ns()}.py"
    # importing the driver's package fails: the model must run without it
    script.write_text("import json, sys\nsys.modules['neurodamus'] = None\n"
                      "from neuron import h\nh.load_file(\"stdrun.hoc\")\n"
                      + textwrap.dedent(body))
    env = dict(os.environ)
    env["NEURON_MODULE_OPTIONS"] = "-nogui"
    env["HOC_LIBRARY_PATH"] = str(MODEL / "hoc")
    env.pop("PYTHONPATH", None)   # the driver's package must not be needed
    proc = subprocess.run([sys.executable, str(script)], cwd=libdir, env=env,
                          capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT:")]
    if proc.returncode != 0 or not lines:
        pytest.fail(f"simulation failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT:"):])


@pytest.fixture(scope="module")
def mechlib(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("minicol_mech")
    took = build_mechanisms(dest)
    print(f"nrnivmodl: {took:.1f} s")
    return dest


# ---- build ----------------------------------------------------------------------------------
def test_all_mechanisms_registered(mechlib):
    res = run_sim(mechlib, f"""
        names = {list(CORE_MECHS + MODEL_MECHS)!r}
        found = {{n: bool(h.name_declared(n)) or hasattr(h, n) for n in names}}
        sec = h.Section()
        for n in ("NaHH", "KdrHH", "KmHH", "TTXDynamicsSwitch"):
            sec.insert(n)
        found["nc_type_param_ProbAMPANMDA_EMS"] = h.nc_type_param_ProbAMPANMDA_EMS
        found["nc_type_param_ProbGABAAB_EMS"] = h.nc_type_param_ProbGABAAB_EMS
        found["ttxo_level"] = h.ttxo_level_TTXDynamicsSwitch
        print("RESULT:" + json.dumps(found))
    """)
    for n in CORE_MECHS + MODEL_MECHS:
        assert res[n], n
    assert res["nc_type_param_ProbAMPANMDA_EMS"] == 4
    assert res["nc_type_param_ProbGABAAB_EMS"] == 4
    assert res["ttxo_level"] == 1e-12


# ---- current and conductance sources ---------------------------------------------------------
def test_membrane_current_source_equals_iclamp(mechlib):
    res = run_sim(mechlib, """
        import numpy as np
        h.dt = 0.025
        h.CVode().use_fast_imem(1)
        secs, srcs, keep = [], [], []
        for kind in ("IClamp", "MembraneCurrentSource"):
            s = h.Section(name=kind)
            s.L = s.diam = 20
            s.insert("pas")
            s.g_pas = 1e-4
            s.e_pas = -70
            src = getattr(h, kind)(s(0.5))
            setattr(src, "del", 0)
            src.dur = 80
            # amp played continuously: step, ramp, step back (as the driver does)
            tv = h.Vector([0, 10, 10, 30, 50, 50, 80])
            av = h.Vector([0, 0, 0.2, 0.2, -0.1, 0.05, 0.05])
            av.play(src._ref_amp, tv, 1)
            secs.append(s); srcs.append(src); keep += [tv, av]
        rec = [h.Vector().record(s(0.5)._ref_v) for s in secs]
        imem = [h.Vector().record(s(0.5)._ref_i_membrane_) for s in secs]
        ivec = h.Vector().record(srcs[1]._ref_i)
        h.finitialize(-70)
        h.continuerun(100)
        v0, v1 = np.array(rec[0]), np.array(rec[1])
        print("RESULT:" + json.dumps(dict(
            maxdiff=float(abs(v0 - v1).max()), dv=float(v1.max() - v1.min()),
            imem_iclamp=float(abs(np.array(imem[0])).max()),
            imem_mcs=float(abs(np.array(imem[1])).max()),
            i_min=float(np.array(ivec).min()), i_end=float(ivec[-1]))))
    """)
    assert res["dv"] > 5                      # the source really drives the cell
    assert res["maxdiff"] < 1e-9              # same voltage as IClamp
    assert res["imem_iclamp"] > 0.1           # an electrode current shows up in i_membrane_ ...
    assert res["imem_mcs"] < 1e-9             # ... a membrane current source balances it
    assert res["i_min"] == pytest.approx(-0.2)  # i = -amp while on
    assert res["i_end"] == 0                  # off after del + dur


def test_conductance_source_clamps_like_seclamp(mechlib):
    res = run_sim(mechlib, """
        import numpy as np
        secs, srcs = [], []
        for kind in ("SEClamp", "ConductanceSource"):
            s = h.Section(name=kind)
            s.L = s.diam = 20
            s.insert("pas")
            s.e_pas = -70
            src = getattr(h, kind)(s(0.5))
            src.rs = 0.01
            src.amp1 = -20
            src.dur1 = 50
            secs.append(s); srcs.append(src)
        rec = [h.Vector().record(s(0.5)._ref_v) for s in secs]
        irec = h.Vector().record(srcs[1]._ref_i)
        h.dt = 0.025
        h.finitialize(-70)
        h.continuerun(150)
        v0, v1 = np.array(rec[0]), np.array(rec[1])
        i1 = np.array(irec)
        print("RESULT:" + json.dumps(dict(
            maxdiff=float(abs(v0 - v1).max()), v40=float(v1[int(40 / h.dt)]),
            v150=float(v1[-1]), i_after=float(abs(i1[int(60 / h.dt):]).max()))))
    """)
    assert res["v40"] == pytest.approx(-20, abs=0.05)   # held at amp1
    assert res["v150"] < -65                            # released after dur1
    assert res["i_after"] == 0
    assert res["maxdiff"] < 1e-6                        # same as the electrode clamp


def test_gap_junction_equalises_voltages(mechlib):
    body = """
        import numpy as np
        pc = h.ParallelContext()
        a, b = h.Section(name="a"), h.Section(name="b")
        for s in (a, b):
            s.L = s.diam = 20
            s.insert("pas")
            s.e_pas = -70
        ic = h.IClamp(a(0.5)); ic.delay = 5; ic.dur = 100; ic.amp = 0.1
        ga, gb = h.Gap(a(0.5)), h.Gap(b(0.5))
        ga.g = gb.g = G
        pc.source_var(a(0.5)._ref_v, 0, sec=a)
        pc.source_var(b(0.5)._ref_v, 1, sec=b)
        pc.target_var(ga, ga._ref_vgap, 1)
        pc.target_var(gb, gb._ref_vgap, 0)
        pc.setup_transfer()
        va, vb = h.Vector().record(a(0.5)._ref_v), h.Vector().record(b(0.5)._ref_v)
        ia = h.Vector().record(ga._ref_i)
        pc.set_maxstep(10)
        h.finitialize(-70)
        pc.psolve(80)
        print("RESULT:" + json.dumps(dict(va=va[-1], vb=vb[-1], ia=ia[-1], vgap=ga.vgap)))
    """
    strong = run_sim(mechlib, body.replace("= G\n", "= 1e4\n"))   # 10 uS
    none = run_sim(mechlib, body.replace("= G\n", "= 0\n"))
    weak = run_sim(mechlib, body.replace("= G\n", "= 5\n"))      # 5 nS
    assert none["vb"] == pytest.approx(-70, abs=1e-6)
    assert none["va"] > -65
    assert abs(strong["va"] - strong["vb"]) < 0.05
    assert strong["vb"] > -68                     # b is pulled up by a
    assert weak["vgap"] == pytest.approx(weak["vb"], abs=1e-9)
    assert weak["ia"] == pytest.approx((weak["va"] - weak["vb"]) * 5 * 1e-3, rel=1e-6)


# ---- TTX -------------------------------------------------------------------------------------
def test_ttx_switch_silences_sodium(mechlib):
    body = """
        import numpy as np
        h.celsius = 34
        s = h.Section(name="soma")
        s.L = s.diam = 20
        for m in ("NaHH", "KdrHH", "pas"):
            s.insert(m)
        s.ena, s.ek, s.e_pas, s.g_pas = 50, -90, -70, 1e-3   # passive plateau below -30 mV
        MODE
        ic = h.IClamp(s(0.5)); ic.delay = 10; ic.dur = 100; ic.amp = 0.3
        nc = h.NetCon(s(0.5)._ref_v, None, sec=s); nc.threshold = -30
        spk = h.Vector(); nc.record(spk)
        ina = h.Vector().record(s(0.5)._ref_ina)
        h.finitialize(-70)
        h.continuerun(120)
        print("RESULT:" + json.dumps(dict(spikes=list(spk), ttxo=s(0.5).ttxo, ttxi=s(0.5).ttxi,
                                          ina=float(np.abs(np.array(ina)).max()))))
    """
    plain = run_sim(mechlib, body.replace("MODE", "pass"))
    switch_off = run_sim(mechlib, body.replace("MODE", "s.insert('TTXDynamicsSwitch')"))
    switch_on = run_sim(mechlib, body.replace(
        "MODE", "s.insert('TTXDynamicsSwitch'); h.ttxo_level_TTXDynamicsSwitch = 1.0"))
    assert len(plain["spikes"]) >= 5
    assert switch_off["spikes"] == plain["spikes"]    # default level: no block
    assert switch_on["spikes"] == []
    assert switch_on["ina"] == 0                      # sodium fully blocked
    assert switch_on["ttxo"] == 1.0 and switch_on["ttxi"] == 1e-12
    assert plain["ttxo"] == 1.0 and plain["ttxi"] == 1.0   # NEURON's default for a new ion


# ---- event sources ---------------------------------------------------------------------------
def test_vecstim_plays_vector(mechlib):
    res = run_sim(mechlib, """
        pc = h.ParallelContext()
        vs = h.VecStim()
        tv = h.Vector([-1.0, 0.0, 1.5, 1.5, 7.25, 30.0])
        vs.play(tv)
        tv.resize(0)                 # play() copied the times
        empty = h.VecStim()
        pc.set_gid2node(0, 0); pc.cell(0, h.NetCon(vs, None))
        pc.set_gid2node(1, 0); pc.cell(1, h.NetCon(empty, None))
        t, gid = h.Vector(), h.Vector()
        pc.spike_record(-1, t, gid)
        pc.set_maxstep(10)
        h.finitialize(-65)
        pc.psolve(20)
        first = list(t)
        h.finitialize(-65)           # replays from the start (and empties t, gid)
        pc.psolve(20)
        print("RESULT:" + json.dumps(dict(first=first, second=list(t), gids=list(gid))))
    """)
    # t < 0 dropped, duplicates kept, the event after tstop never delivered
    assert res["first"] == pytest.approx([0.0, 1.5, 1.5, 7.25])
    assert res["second"] == res["first"]
    assert set(res["gids"]) == {0}


def test_inhpoisson_rates_and_streams(mechlib):
    res = run_sim(mechlib, """
        import numpy as np
        pc = h.ParallelContext()
        h.Random().Random123_globalindex(3)
        T = 50000.0
        cfg = [  # (exp ids, uniform ids, tbins, rates, duration)
            ((200, 251, 300), (200, 251, 350), [0.0], [40.0], 1e9),
            ((201, 251, 300), (201, 251, 350), [0.0], [40.0], 1e9),
            ((202, 251, 300), (202, 251, 350), [0.0], [40.0], 1e9),
            ((200, 251, 300), (200, 251, 350), [0.0], [40.0], 1e9),   # same ids as #0
            ((203, 251, 300), (203, 251, 350), [0.0, T / 2], [10.0, 60.0], 1e9),
            ((204, 251, 300), (204, 251, 350), [0.0], [40.0], 1000.0),
            ((205, 251, 300), (205, 251, 350), [], [], 1e9),          # no rate: silent
        ]
        keep = []
        for gid, (e, u, tb, r, dur) in enumerate(cfg):
            s = h.InhPoissonStim()
            s.setRNGs(*e, *u)
            s.setTbins(h.Vector(tb))
            s.setRate(h.Vector(r))
            s.duration = dur
            pc.set_gid2node(gid, 0)
            nc = h.NetCon(s, None)
            pc.cell(gid, nc)
            keep.append((s, nc))
        t, g = h.Vector(), h.Vector()
        pc.spike_record(-1, t, g)
        pc.set_maxstep(10)
        h.finitialize(-65)
        pc.psolve(T)
        t, g = np.array(t), np.array(g)
        out = {f"t{k}": t[g == k].tolist() for k in range(len(cfg))}
        out["rmax4"] = keep[4][0].rmax
        print("RESULT:" + json.dumps(out))
    """, timeout=200)
    T = 50000.0
    n_const = sum(len(res[f"t{k}"]) for k in range(3))
    assert n_const / (3 * T / 1000) == pytest.approx(40.0, rel=0.05)
    assert res["t0"] == res["t3"]                              # same ids: same sequence
    assert res["t0"][:20] != res["t1"][:20]                     # other ids: other sequence
    first, second = [sum(1 for x in res["t4"] if (x < T / 2) == half) for half in (True, False)]
    assert first / (T / 2000) == pytest.approx(10.0, rel=0.2)
    assert second / (T / 2000) == pytest.approx(60.0, rel=0.1)
    assert res["rmax4"] == 60.0
    assert 0 < len(res["t5"]) and max(res["t5"]) <= 1000.0      # duration
    assert res["t6"] == []


# ---- synapses --------------------------------------------------------------------------------
SYN_SETUP = """
import numpy as np
pc = h.ParallelContext()
h.Random().Random123_globalindex(11)
h.celsius = 34
h.dt = 0.025
MECH = "{mech}"
PRIMARY = "{primary}"
cells = []

def make(use, nrrp, dep, fac, ids, times, weight=0.002, delays=None, e_pas=-65, nc_type=0):
    s = h.Section()
    s.L = s.diam = 20
    s.insert("pas")
    s.g_pas = 1e-4
    s.e_pas = e_pas
    syn = getattr(h, MECH)(s(0.5))
    syn.Use, syn.Nrrp, syn.Dep, syn.Fac = use, nrrp, dep, fac
    syn.setRNG(*ids)
    syn.conductance = weight
    vs = h.VecStim()
    vs.play(h.Vector(times))
    nc = h.NetCon(vs, syn)
    nc.delay = 0.5
    nc.weight[0] = weight
    nc.weight[int(getattr(h, "nc_type_param_" + MECH))] = nc_type
    if delays:
        syn.setup_delay_vecs(h.Vector(delays[0]), h.Vector(delays[1]))
    rec = dict(v=h.Vector().record(s(0.5)._ref_v),
               g=h.Vector().record(getattr(syn, "_ref_g_" + PRIMARY)),
               n=h.Vector().record(syn._ref_nreleased_total))
    cells.append((s, syn, vs, nc, rec))
    return rec

def run(tstop):
    pc.set_maxstep(10)
    h.finitialize(-65)
    pc.psolve(tstop)

def peaks(g, times, width=15):
    g = np.asarray(g)
    return [float(g[int((t + 0.5) / h.dt):int((t + 0.5 + width) / h.dt)].max()) for t in times]
"""

SYNAPSES = [("ProbAMPANMDA_EMS", "AMPA"), ("ProbGABAAB_EMS", "GABAA")]


@pytest.mark.parametrize("mech,primary", SYNAPSES)
def test_synapse_deterministic_psp(mechlib, mech, primary):
    res = run_sim(mechlib, SYN_SETUP.format(mech=mech, primary=primary) + """
rec = make(1.0, 1, 800, 0, (251, 100, 300), [10.0])
run(60)
v = np.array(rec["v"])
print("RESULT:" + json.dumps(dict(peak=peaks(rec["g"], [10.0])[0], vmax=float(v.max()),
                                  vmin=float(v.min()), n=rec["n"][-1])))
""")
    assert res["n"] == 1
    assert res["peak"] == pytest.approx(0.002, rel=0.01)     # AMPA / GABA_A peak = weight (uS)
    if primary == "AMPA":
        assert res["vmax"] > -65 + 0.5                        # EPSP
    else:
        assert res["vmin"] < -65 - 0.5                        # IPSP (e_GABAA = -80)


@pytest.mark.parametrize("mech,primary", SYNAPSES)
def test_synapse_streams_and_depression(mechlib, mech, primary):
    res = run_sim(mechlib, SYN_SETUP.format(mech=mech, primary=primary) + """
train = list(np.arange(10.0, 400.0, 20.0))
a = make(0.5, 5, 100, 10, (251, 100, 300), train)
b = make(0.5, 5, 100, 10, (251, 100, 300), train)       # same ids as a
c = make(0.5, 5, 100, 10, (251, 101, 300), train)       # other synapse id
burst = [20.0 + 10 * k for k in range(10)]
dep = [make(0.6, 3, 800, 0, (300 + k, 100, 300), burst) for k in range(30)]
run(420)
def n_at(r, times):
    n = np.asarray(r["n"])
    return [float(n[int((t + 1.0) / h.dt)]) for t in times]
per_event = []
for r in dep:
    cum = [0.0] + n_at(r, burst)
    per_event.append(np.diff(cum))
per_event = np.mean(per_event, axis=0)
print("RESULT:" + json.dumps(dict(
    ga=list(map(float, a["g"])), gb=list(map(float, b["g"])), gc=list(map(float, c["g"])),
    na=a["n"][-1], nc=c["n"][-1], per_event=per_event.tolist())))
""")
    assert res["ga"] == res["gb"]                 # same seeds: same result
    assert res["ga"] != res["gc"]                 # different ids: different releases
    assert 0 < res["na"] < 5 * 20
    per_event = res["per_event"]
    assert per_event[0] == pytest.approx(0.6 * 3, abs=0.5)   # fresh pool: Nrrp * Use on average
    assert per_event[0] > 2.5 * (sum(per_event[5:]) / 5)     # depressed later in the burst


@pytest.mark.parametrize("mech,primary", SYNAPSES)
def test_synapse_delayed_weight_changes(mechlib, mech, primary):
    res = run_sim(mechlib, SYN_SETUP.format(mech=mech, primary=primary) + """
train = [10.0, 70.0, 130.0, 190.0, 250.0, 310.0]   # 60 ms apart: each peak stands alone
delays = ([100.0, 220.0], [0.5, 3.0])
pre = make(1.0, 1, 0, 0, (1, 2, 3), train, delays=delays)          # presynaptic NetCon
mini = make(1.0, 1, 0, 0, (1, 2, 3), train, delays=delays, nc_type=1)
run(330)
print("RESULT:" + json.dumps(dict(pre=peaks(pre["g"], train), mini=peaks(mini["g"], train),
                                  w_pre=cells[0][3].weight[0], w_mini=cells[1][3].weight[0])))
""")
    assert res["pre"] == pytest.approx([0.002, 0.002, 0.001, 0.001, 0.006, 0.006], rel=0.01)
    assert res["mini"] == pytest.approx([0.002] * 6, rel=0.01)     # only nc_type 0 changes
    assert res["w_pre"] == pytest.approx(0.006)
    assert res["w_mini"] == pytest.approx(0.002)


# ---- templates -------------------------------------------------------------------------------
TEMPLATE_SETUP = """
import numpy as np
import morphio
h.load_file("stdrun.hoc")
h.celsius = 34
h.dt = 0.025
T, MORPH = "{template}", "{morph}"
h.load_file(T + ".hoc")
cell = getattr(h, T)(7, "{morph_dir}", MORPH, 0)
m = morphio.Morphology("{morph_dir}/" + MORPH)
arrays = dict(axon=2, dend=3, apic=4)
expected = {{"soma[0]": 0}}
count = dict(axon=0, dend=0, apic=0)
for s in m.sections:
    name = [a for a, t in arrays.items() if int(s.type) == t][0]
    expected[f"{{name}}[{{count[name]}}]"] = s.id + 1
    count[name] += 1
index = {{sec.name().split(".")[-1]: int(round(sec(0.0001).v)) for sec in cell.all}}
soma = cell.soma[0]
ic = h.IClamp(soma(0.5))
ic.delay, ic.dur = 100, 1000
nc = h.NetCon(soma(1)._ref_v, None, sec=soma)
nc.threshold = -30
spk = h.Vector()
nc.record(spk)
vsoma = h.Vector().record(soma(0.5)._ref_v)

def fire(amp):
    ic.amp = amp
    h.finitialize(-70)
    h.continuerun(1100)
    s = np.array(spk)
    isi = np.diff(s)
    return dict(n=len(s), rest=float(vsoma[int(99 / h.dt)]),
                first_isi=float(isi[0]) if len(isi) else None,
                last_isi=float(isi[-1]) if len(isi) else None)
"""


def _template_sim(mechlib, template, morph, tail):
    return run_sim(mechlib, TEMPLATE_SETUP.format(template=template, morph=morph,
                                                  morph_dir=MORPH_DIR) + tail)


@pytest.mark.parametrize("template,morph", [("PyrHH", "pyr_0.swc"), ("IntHH", "int_0.swc")])
def test_template_structure_and_replace_axon(mechlib, template, morph):
    res = _template_sim(mechlib, template, morph, """
before = dict(nSecAll=cell.nSecAll, nSecSoma=cell.nSecSoma, nSecAxonalOrig=cell.nSecAxonalOrig,
              nSecBasal=cell.nSecBasal, nSecApical=cell.nSecApical, gid=cell.gid,
              n_all=sum(1 for _ in cell.all), n_axonal=sum(1 for _ in cell.axonal),
              n_basal=sum(1 for _ in cell.basal), n_apical=sum(1 for _ in cell.apical),
              odd_nseg=all(sec.nseg % 2 == 1 for sec in cell.all),
              max_nseg=max(sec.nseg for sec in cell.all),
              lists=[type(cell.synlist).__name__, cell.synlist.count(), cell.synHelperList.count()])
cell.re_init_rng()
cell.re_init_rng(5)
cell.clear()
old = {k: v for k, v in index.items() if k.startswith("axon")}
cell.replace_axon()
after_index = {sec.name().split(".")[-1]: int(round(sec(0.0001).v)) for sec in cell.all}
ax = [dict(L=sec.L, diam=sec.diam, parent=sec.parentseg().sec.name().split(".")[-1],
           na=sec.has_membrane("NaHH")) for sec in cell.axonal]
print("RESULT:" + json.dumps(dict(before=before, index=index, expected=expected, old=old,
      after_index=after_index, ax=ax, nSecAll_after=cell.nSecAll,
      nSecAxonalOrig_after=cell.nSecAxonalOrig, n_all_after=sum(1 for _ in cell.all),
      fire=fire(0.8))))
""")
    b = res["before"]
    n_sec = len(res["expected"])
    assert b["gid"] == 7
    assert b["nSecAll"] == n_sec == b["n_all"]
    assert b["nSecSoma"] == 1
    assert b["nSecAxonalOrig"] == b["n_axonal"] > 2
    assert b["nSecBasal"] == b["n_basal"] > 0
    assert b["nSecApical"] == b["n_apical"] == (7 if template == "PyrHH" else 0)
    assert b["odd_nseg"] and b["max_nseg"] > 1       # d_lambda rule ran
    assert b["lists"] == ["List", 0, 0]
    # the loader's section index survives the template's nseg changes
    assert res["index"] == res["expected"]
    # replace_axon: two 30 um stubs with the indices of the old axon[0], axon[1]
    assert [a["L"] for a in res["ax"]] == [30, 30]
    assert [a["diam"] for a in res["ax"]] == [1, 1]
    assert [a["parent"] for a in res["ax"]] == ["soma[0]", "axon[0]"]
    assert all(a["na"] for a in res["ax"])
    assert res["after_index"]["axon[0]"] == res["old"]["axon[0]"]
    assert res["after_index"]["axon[1]"] == res["old"]["axon[1]"]
    assert res["nSecAll_after"] == b["nSecAll"]
    assert res["nSecAxonalOrig_after"] == b["nSecAxonalOrig"]
    assert res["n_all_after"] == n_sec - b["nSecAxonalOrig"] + 2
    assert res["fire"]["n"] > 5                       # still a working neuron


def test_pyramidal_firing(mechlib):
    res = _template_sim(mechlib, "PyrHH", "pyr_0.swc", """
print("RESULT:" + json.dumps({str(a): fire(a) for a in (0.0, 0.75, 1.0)}))
""")
    assert -75 < res["0.0"]["rest"] < -68 and res["0.0"]["n"] == 0
    low, high = res["0.75"], res["1.0"]
    assert 10 <= low["n"] <= 40                 # Hz over the 1 s step
    assert 20 <= high["n"] <= 60
    assert high["n"] > low["n"]
    assert high["last_isi"] > 2 * high["first_isi"]   # adapting


def test_interneuron_firing(mechlib):
    res = _template_sim(mechlib, "IntHH", "int_0.swc", """
print("RESULT:" + json.dumps({str(a): fire(a) for a in (0.0, 0.5)}))
""")
    assert -72 < res["0.0"]["rest"] < -68 and res["0.0"]["n"] == 0
    fs = res["0.5"]
    assert 40 <= fs["n"] <= 160
    assert fs["last_isi"] < 1.2 * fs["first_isi"]    # fast spiking, no adaptation


# ---- CoreNEURON ------------------------------------------------------------------------------
CORENRN_NET = """
import sys
import numpy as np
from neuron import coreneuron
h.load_file("stdrun.hoc")
pc = h.ParallelContext()
h.Random().Random123_globalindex(5)
h.celsius = 34
h.dt = 0.025
h.load_file("PyrHH.hoc")
h.load_file("IntHH.hoc")
pyr = h.PyrHH(0, "{morph_dir}", "pyr_0.swc", 0)
inh = h.IntHH(1, "{morph_dir}", "int_0.swc", 0)
keep = []
for gid, cell in enumerate((pyr, inh)):
    pc.set_gid2node(gid, 0)
    nc = h.NetCon(cell.soma[0](1)._ref_v, None, sec=cell.soma[0])
    nc.threshold = -30
    pc.cell(gid, nc)
    cell.gid = gid
# replayed input (VecStim) on pyramidal dendrites, one with delayed weight changes
rng = np.random.default_rng(1)
for k in range(8):
    syn = h.ProbAMPANMDA_EMS(pyr.dend[k](0.5))
    syn.Use, syn.Dep, syn.Fac, syn.Nrrp = 0.5, 300, 20, 2
    syn.setRNG(251, 100 + k, 300)
    syn.conductance = 0.004
    vs = h.VecStim()
    vs.play(h.Vector(np.sort(rng.uniform(5, 290, 40))))
    nc = h.NetCon(vs, syn)
    nc.delay, nc.weight[0] = 1.0, 0.004
    nc.weight[4] = 2
    if k == 0:
        syn.setup_delay_vecs(h.Vector([100.0]), h.Vector([2.0]))
        nc.weight[4] = 0
    keep += [syn, vs, nc]
# spontaneous minis (InhPoissonStim) on GABA synapses of the pyramidal soma
for k in range(3):
    syn = h.ProbGABAAB_EMS(pyr.soma[0](0.5))
    syn.setRNG(251, 200 + k, 300)
    syn.GABAB_ratio = 0.3
    stim = h.InhPoissonStim()
    stim.setRNGs(200 + k, 251, 300, 200 + k, 251, 350)
    stim.setTbins(h.Vector([0.0]))
    stim.setRate(h.Vector([30.0]))
    nc = h.NetCon(stim, syn)
    nc.delay, nc.weight[0] = 0.1, 0.003
    nc.weight[4] = 1
    keep += [syn, stim, nc]
# pyramidal -> interneuron connection
syn = h.ProbAMPANMDA_EMS(inh.dend[0](0.5))
syn.setRNG(252, 100, 300)
nc = pc.gid_connect(0, syn)
nc.delay, nc.weight[0], nc.threshold = 1.5, 0.01, -30
keep += [syn, nc]
# driver sources, TTX switch at its default level, a gap junction pair
mcs = h.MembraneCurrentSource(inh.soma[0](0.5))
setattr(mcs, "del", 50); mcs.dur, mcs.amp = 150, 0.6
cs = h.ConductanceSource(pyr.soma[0](0.5))
cs.rs, cs.amp1, cs.dur1 = 60.0, 0.0, 250
for sec in inh.all:
    sec.insert("TTXDynamicsSwitch")
g1, g2 = h.Gap(pyr.dend[1](0.5)), h.Gap(inh.dend[1](0.5))
g1.g = g2.g = 2.0
pc.source_var(pyr.dend[1](0.5)._ref_v, 0, sec=pyr.dend[1])
pc.source_var(inh.dend[1](0.5)._ref_v, 1, sec=inh.dend[1])
pc.target_var(g1, g1._ref_vgap, 1)
pc.target_var(g2, g2._ref_vgap, 0)
pc.setup_transfer()
t, gid = h.Vector(), h.Vector()
pc.spike_record(-1, t, gid)
vp = h.Vector().record(pyr.soma[0](0.5)._ref_v)
vi = h.Vector().record(inh.soma[0](0.5)._ref_v)
h.CVode().cache_efficient(1)
pc.set_maxstep(10)
if "core" in sys.argv:
    coreneuron.enable = True
    coreneuron.verbose = 0
h.finitialize(-70)
pc.psolve(300)
print("RESULT:" + json.dumps(dict(t=list(t), gid=list(gid), vp=list(vp), vi=list(vi))))
"""


@pytest.mark.slow
def test_coreneuron_build_and_same_results(tmp_path):
    """`nrnivmodl -coreneuron` compiles everything and CoreNEURON reproduces NEURON."""
    took = build_mechanisms(tmp_path, coreneuron=True)
    print(f"nrnivmodl -coreneuron: {took:.1f} s")
    assert (tmp_path / "x86_64" / "libcorenrnmech.so").exists()
    body = CORENRN_NET.format(morph_dir=MORPH_DIR)
    script = "import sys\nsys.argv.append('{}')\n"
    nrn = run_sim(tmp_path, script.format("nrn") + body)
    core = run_sim(tmp_path, script.format("core") + body)
    assert len(nrn["t"]) >= 10 and {0.0, 1.0} <= set(nrn["gid"])
    assert core["gid"] == nrn["gid"]
    assert core["t"] == pytest.approx(nrn["t"], abs=1e-9)
    import numpy as np
    for key in ("vp", "vi"):
        assert len(core[key]) == len(nrn[key])
        diff = np.max(np.abs(np.array(core[key]) - np.array(nrn[key])))
        print(f"CoreNEURON vs NEURON, {key}: max |dv| = {diff:.3g} mV")
        assert diff < 1e-6
