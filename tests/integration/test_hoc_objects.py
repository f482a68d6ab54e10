"""Per-synapse objects made on the hoc side (connectivity/hoc_objects.py, core/hoc/ndconnect.hoc).

Run in a fresh NEURON process (no mechanism library: only NEURON's built-in ExpSyn/NetStim),
so that nothing of the test process's hoc state is involved.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, tracemalloc
    from neuron import h
    from neurodamus.connectivity import hoc_objects as ho
    from neurodamus.errors import LaunchError

    out = {}
    ho.load(h)
    ho.load(h)   # once per process: a second call does nothing
    sec = h.Section(name="dend")
    sec.nseg = 5   # segment centres 0.1, 0.3, 0.5, 0.7, 0.9
    make = ho.point_process_factory(h, "ExpSyn")
    keep = ho.ObjectList(h)
    for x in (0.1, 0.5, 0.9):
        keep.append(make(x, sec=sec))
    out["len"] = len(keep)
    out["x"] = [round(pp.get_segment().x, 6) for pp in keep]
    out["types"] = [keep[i].hname().split("[")[0] for i in range(len(keep))]
    out["last"] = keep[-1].hname() == keep[2].hname()
    try:
        keep[3]
    except IndexError:
        out["index_error"] = True
    try:
        ho.point_process_factory(h, "ExpSyn() { }")
    except ValueError as exc:
        out["bad_name"] = str(exc)

    # replay NetCon: delay, weight, threshold and the NetCon-type slot
    stim = h.NetStim()
    ncs = ho.ObjectList(h)
    h.nd_event_netcon(stim, keep[0], 1.5, 0.25, 10, 0, 2, ncs.hoc)
    nc = ncs[0]
    out["netcon"] = [nc.delay, nc.weight[0], nc.threshold, nc.syn().hname() == keep[0].hname()]

    # the point of it all: no Python memory kept per object (h.ExpSyn(...) keeps ~96 B)
    many = ho.ObjectList(h)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(20000):
        many.append(make(0.5, sec=sec))
    out["py_bytes_per_object"] = (tracemalloc.get_traced_memory()[0] - before) / 20000
    out["hoc_count"] = int(h.List("ExpSyn").count())

    # the minis generator needs InhPoissonStim: without it, one clear error
    try:
        ho.load(h, "ndminis.hoc")
    except LaunchError as exc:
        out["minis_error"] = str(exc)
    print("RESULT" + json.dumps(out))
""")


def test_hoc_side_objects_behave_like_a_list_and_keep_no_python_memory():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(lines[0][len("RESULT"):])
    assert out["len"] == 3
    assert out["x"] == [0.1, 0.5, 0.9]
    assert out["types"] == ["ExpSyn"] * 3
    assert out["last"] and out["index_error"]
    assert "not a mechanism name" in out["bad_name"]
    assert out["netcon"] == [1.5, 0.25, 10.0, True]
    assert out["hoc_count"] == 3 + 20000
    assert out["py_bytes_per_object"] < 8, out["py_bytes_per_object"]
    assert "ndminis.hoc" in out["minis_error"]
