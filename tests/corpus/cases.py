"""The bad-input corpus: each case breaks one thing in a copy of the example circuit.

Every case is run on 1 and on 2 ranks (``tests/integration/test_faults_corpus.py``) and must
give one clear error naming the file (``file``) and the key or object at fault (``key``, plus
any ``extra`` patterns), a non-zero exit code, no hang and no SUCCESS marker.

Patterns are regular expressions searched in the run's combined output (case-sensitive).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .mutations import Workspace


@dataclass(frozen=True)
class Case:
    name: str
    area: str
    mutate: Callable[[Workspace], None]
    file: str                 # pattern naming the file at fault
    key: str                  # pattern naming the key, column, option or object at fault
    extra: tuple = ()         # more patterns that must appear
    exit_code: int | None = None   # exact exit code, else any non-zero
    gap: str = ""             # a known driver gap: which file must change (the test xfails)
    warns: bool = False       # a warning case: the run succeeds and the patterns are printed

    @property
    def patterns(self) -> tuple[str, ...]:
        return (self.file, self.key, *self.extra)


CASES: list[Case] = []


def case(name, area, file, key, *extra, exit_code=None, gap="", warns=False):
    def register(fn):
        CASES.append(Case(name, area, fn, file, key, tuple(extra), exit_code, gap, warns))
        return fn
    return register


# ---- simulation config ----------------------------------------------------------------------
@case("config-file-missing", "config", r"no_such_config\.json", r"Simulation config not found")
def _(w: Workspace):
    w.config = w.dir / "no_such_config.json"


@case("config-invalid-json", "config", r"simulation_config\.json", r"invalid JSON at line \d+")
def _(w):
    text = w.path("simulation_config.json").read_text()
    w.write("simulation_config.json", text.replace('"tstop":', '"tstop"', 1))


@case("config-not-an-object", "config", r"simulation_config\.json", r"top level must be a JSON "
      r"object")
def _(w):
    w.write("simulation_config.json", "[1, 2, 3]\n")


@case("config-run-missing", "config", r"simulation_config\.json", r"'run'")
def _(w):
    w.sim(lambda d: d.pop("run"))


@case("config-dt-missing", "config", r"simulation_config\.json", r"'dt'")
def _(w):
    w.sim(lambda d: d["run"].pop("dt"))


@case("config-tstop-not-a-number", "config", r"simulation_config\.json", r"tstop")
def _(w):
    w.sim(lambda d: d["run"].update(tstop="fifty"))


@case("config-dt-negative", "config", r"simulation_config\.json", r"run\.dt")
def _(w):
    w.sim(lambda d: d["run"].update(dt=-0.025))


@case("config-tstop-negative", "config", r"simulation_config\.json", r"run\.tstop")
def _(w):
    w.sim(lambda d: d["run"].update(tstop=-10.0))


@case("config-node-set-unknown", "config", r"simulation_config\.json",
      r"node_set: unknown node set 'NoSuchSet'")
def _(w):
    w.sim(lambda d: d.update(node_set="NoSuchSet"))


@case("config-node-set-unknown-population", "config", r"simulation_config\.json",
      r"node_set", r"'ghost'")
def _(w):
    w.edit_json("node_sets.json", lambda d: d.update(Ghost={"population": "ghost"}))
    w.sim(lambda d: d.update(node_set="Ghost"))


@case("config-node-set-selects-nothing", "config", r"simulation_config\.json",
      r"node_set", r"selects no cell")
def _(w):
    w.edit_json("node_sets.json", lambda d: d.update(Nobody={"population": "cortex",
                                                              "mtype": "L1_NOBODY"}))
    w.sim(lambda d: d.update(node_set="Nobody"))


@case("config-network-missing", "config", r"no_circuit\.json", r"network")
def _(w):
    w.sim(lambda d: d.update(network="no_circuit.json"))


@case("config-target-simulator-unknown", "config", r"simulation_config\.json",
      r"target_simulator")
def _(w):
    w.sim(lambda d: d.update(target_simulator="NEST"))


@case("config-output-dir-is-a-file", "config", r"simulation_config\.json",
      r"output\.output_dir", r"not_a_dir")
def _(w):
    w.write("not_a_dir", "a file where the output folder should be\n")
    w.sim(lambda d: d["output"].update(output_dir="not_a_dir"))


@case("config-input-module-unknown", "config", r"simulation_config\.json",
      r"inputs\.thalamic_drive", r"teleport")
def _(w):
    w.sim(lambda d: d["inputs"]["thalamic_drive"].update(module="teleport"))


@case("config-input-node-set-unknown", "config", r"simulation_config\.json",
      r"inputs\.thalamic_drive\.node_set", r"Nowhere")
def _(w):
    w.sim(lambda d: d["inputs"]["thalamic_drive"].update(node_set="Nowhere"))


@case("config-input-delay-negative", "config", r"simulation_config\.json",
      r"inputs\.thalamic_drive\.delay")
def _(w):
    w.sim(lambda d: d["inputs"]["thalamic_drive"].update(delay=-5.0))


@case("config-mechanism-global-unknown", "config", r"simulation_config\.json",
      r"conditions\.mechanisms\.NaHH\.no_such_var")
def _(w):
    w.sim(lambda d: d["conditions"].update(mechanisms={"NaHH": {"no_such_var": 1.0}}))


@case("config-node-sets-file-missing", "config", r"simulation_config\.json",
      r"node_sets_file", r"no_sets\.json")
def _(w):
    w.sim(lambda d: d.update(node_sets_file="no_sets.json"))


# ---- circuit config -------------------------------------------------------------------------
@case("circuit-invalid-json", "circuit", r"circuit_config\.json", r"invalid JSON at line \d+")
def _(w):
    text = w.path("circuit_config.json").read_text()
    w.write("circuit_config.json", text.rstrip().rstrip("}"))


@case("circuit-nodes-file-missing", "circuit", r"nodes\.h5",
      r"networks\.nodes\[0\]\.nodes_file")
def _(w):
    w.remove("nodes.h5")


@case("circuit-edges-file-missing", "circuit", r"edges\.h5",
      r"networks\.edges\[0\]\.edges_file")
def _(w):
    w.remove("edges.h5")


@case("circuit-morphologies-dir-missing", "circuit", r"circuit_config\.json",
      r"morphologies_dir")
def _(w):
    w.remove("morphologies")


@case("circuit-emodels-dir-missing", "circuit", r"circuit_config\.json",
      r"biophysical_neuron_models_dir")
def _(w):
    w.remove("emodels")


@case("circuit-mechanisms-dir-missing", "circuit", r"circuit_config\.json",
      r"components\.mechanisms_dir", r"no_mechanisms")
def _(w):
    w.circuit(lambda d: d["components"].update(mechanisms_dir="$BASE_DIR/no_mechanisms"))


@case("circuit-node-population-unknown", "circuit", r"nodes\.h5", r"cortexx")
def _(w):
    def edit(d):
        pops = d["networks"]["nodes"][0]["populations"]
        pops["cortexx"] = pops.pop("cortex")
    w.circuit(edit)


@case("circuit-edge-population-unknown", "circuit", r"edges\.h5",
      r"networks\.edges\[0\]\.populations\.cortex__nowhere")
def _(w):
    def edit(d):
        pops = d["networks"]["edges"][0]["populations"]
        pops["cortex__nowhere"] = pops.pop("cortex__cortex__chemical")
    w.circuit(edit)


@case("circuit-population-type-unsupported", "circuit", r"circuit_config\.json",
      r"populations\.cortex\.type", r"point_neuron")
def _(w):
    w.circuit(lambda d: d["networks"]["nodes"][0]["populations"]["cortex"]
              .update(type="point_neuron"))


@case("circuit-node-sets-invalid-json", "circuit", r"node_sets\.json", r"node_sets_file")
def _(w):
    w.write("node_sets.json", '{"Cortex": {"population": "cortex"},,}')


# ---- node files -----------------------------------------------------------------------------
@case("nodes-not-hdf5", "nodes", r"nodes\.h5", r"networks\.nodes\[0\]|nodes_file|cortex")
def _(w):
    w.write("nodes.h5", b"this is not an HDF5 file\n" * 10)


@case("nodes-model-template-column-missing", "nodes", r"nodes\.h5", r"model_template")
def _(w):
    w.h5_delete("nodes.h5", "nodes/cortex/0/model_template")


@case("nodes-morphology-column-missing", "nodes", r"nodes\.h5", r"morphology")
def _(w):
    w.h5_delete("nodes.h5", "nodes/cortex/0/morphology")


@case("nodes-model-template-mistyped", "nodes", r"nodes\.h5", r"model_template")
def _(w):
    n = len(w.node_column("model_template"))
    w.h5_replace("nodes.h5", "nodes/cortex/0/model_template", np.arange(n, dtype=np.int32))


@case("nodes-morphology-mistyped", "nodes", r"nodes\.h5", r"morphology")
def _(w):
    n = len(w.node_column("morphology"))
    w.h5_replace("nodes.h5", "nodes/cortex/0/morphology", np.linspace(0, 1, n))


@case("nodes-template-unknown", "nodes", r"NoSuchCell\.hoc", r"hoc:NoSuchCell")
def _(w):
    names = np.array([b"hoc:NoSuchCell"] * len(w.node_column("model_template")), dtype=object)
    import h5py
    w.h5_replace("nodes.h5", "nodes/cortex/0/model_template",
                 names.astype(h5py.string_dtype()))


@case("nodes-template-not-hoc", "nodes", r"nodes\.h5", r"model_template", r"nml:")
def _(w):
    import h5py
    names = np.array(["nml:PyrHH"] * len(w.node_column("model_template")), dtype=object)
    w.h5_replace("nodes.h5", "nodes/cortex/0/model_template", names.astype(
        h5py.string_dtype()))


# ---- edge files -----------------------------------------------------------------------------
@case("edges-not-hdf5", "edges", r"edges\.h5", r"networks\.edges\[0\]\.edges_file")
def _(w):
    w.write("edges.h5", b"\x00garbage" * 64)


@case("edges-conductance-column-missing", "edges", r"edges\.h5", r"conductance")
def _(w):
    w.h5_delete("edges.h5", "edges/cortex__cortex__chemical/0/conductance")


@case("edges-section-id-column-missing", "edges", r"edges\.h5", r"afferent_section_id")
def _(w):
    w.h5_delete("edges.h5", "edges/cortex__cortex__chemical/0/afferent_section_id")


@case("edges-delay-mistyped", "edges", r"edges\.h5", r"delay")
def _(w):
    import h5py
    n = len(w.h5_read("edges.h5", "edges/cortex__cortex__chemical/0/delay"))
    w.h5_replace("edges.h5", "edges/cortex__cortex__chemical/0/delay",
                 np.array(["1.5"] * n, dtype=object).astype(h5py.string_dtype()))


@case("edges-syn-type-mistyped", "edges", r"projections\.h5", r"syn_type_id")
def _(w):
    import h5py
    n = len(w.h5_read("projections.h5", "edges/thalamus__cortex__chemical/0/syn_type_id"))
    w.h5_replace("projections.h5", "edges/thalamus__cortex__chemical/0/syn_type_id",
                 np.array(["exc"] * n, dtype=object).astype(h5py.string_dtype()))


@case("edges-source-out-of-range", "edges", r"edges\.h5", r"source|node id")
def _(w):
    src = w.h5_read("edges.h5", "edges/cortex__cortex__chemical/source_node_id")
    src[0] = 100000
    with __import__("h5py").File(w.path("edges.h5"), "r+") as fd:
        fd["edges/cortex__cortex__chemical/source_node_id"][...] = src


# ---- morphologies ---------------------------------------------------------------------------
@case("morphology-file-missing", "morphology", r"\.swc", r"gid \d+")
def _(w):
    w.remove(f"morphologies/{w.morphology_of_last_node()}.swc")


@case("morphology-corrupt-on-one-rank", "morphology", r"\.swc", r"gid \d+",
      r"Template '\w+'")
def _(w):
    _, name = w.morphology_used_once()
    w.write(f"morphologies/{name}.swc", "1 1 0 0 0 five -1\n2 3 what is this\n")


@case("morphology-no-soma", "morphology", r"\.swc", r"gid \d+", r"soma")
def _(w):
    name = w.morphology_of_last_node()
    lines = w.path(f"morphologies/{name}.swc").read_text().splitlines()
    rows = [ln for ln in lines if ln and not ln.startswith("#")]
    w.write(f"morphologies/{name}.swc", "\n".join(r for r in rows if r.split()[1] != "1")
            + "\n")


@case("morphology-unknown-section-type", "morphology", r"\.swc", r"gid \d+", r"type")
def _(w):
    name = w.morphology_of_last_node()
    lines = w.path(f"morphologies/{name}.swc").read_text().splitlines()
    out = []
    for ln in lines:
        parts = ln.split()
        if ln and not ln.startswith("#") and parts[1] == "3":
            parts[1] = "9"
            ln = " ".join(parts)
        out.append(ln)
    w.write(f"morphologies/{name}.swc", "\n".join(out) + "\n")


# ---- templates ------------------------------------------------------------------------------
@case("template-file-missing", "template", r"IntHH\.hoc", r"hoc:IntHH")
def _(w):
    w.remove("emodels/IntHH.hoc")


@case("template-syntax-error", "template", r"PyrHH\.hoc", r"PyrHH")
def _(w):
    w.replace_text("emodels/PyrHH.hoc", "proc biophys() {", "proc biophys() { x = = 1")


@case("template-wrong-name", "template", r"IntHH\.hoc", r"'IntHH'")
def _(w):
    w.write("emodels/IntHH.hoc", w.path("emodels/IntHH.hoc").read_text()
            .replace("begintemplate IntHH", "begintemplate IntHHX")
            .replace("endtemplate IntHH", "endtemplate IntHHX"))


@case("template-unknown-mechanism", "template", r"PyrHH\.hoc", r"NoSuchChannel",
      r"gid \d+", r"\.swc")
def _(w):
    w.replace_text("emodels/PyrHH.hoc", "insert KmHH", "insert NoSuchChannel")


@case("template-init-error", "template", r"IntHH\.hoc|\.swc", r"gid \d+", r"IntHH",
      r"morpholog")
def _(w):
    w.replace_text("emodels/IntHH.hoc", "    geom_nseg()\n",
                   '    geom_nseg()\n    execerror("IntHH: broken on purpose", "")\n')


# ---- mechanism libraries --------------------------------------------------------------------
@case("mechlib-file-missing", "mechanisms", r"no_such_lib\.so", r"NRNMECH_LIB_PATH")
def _(w):
    w.env["NRNMECH_LIB_PATH"] = str(w.dir / "no_such_lib.so")


@case("mechlib-not-a-library", "mechanisms", r"fake_libnrnmech\.so", r"NRNMECH_LIB_PATH")
def _(w):
    w.write("fake_libnrnmech.so", "not a shared object\n")
    w.env["NRNMECH_LIB_PATH"] = str(w.dir / "fake_libnrnmech.so")


@case("mechlib-lacks-template-mechanism", "mechanisms", r"PyrHH\.hoc", r"KmHH",
      r"gid \d+", r"\.swc", r"libnrnmech\.so")
def _(w):
    w.env["NRNMECH_LIB_PATH"] = str(w.libraries["reduced"])   # no KmHH, no synapses


@case("mechlib-lacks-synapse-mechanism", "mechanisms", r"edges\.h5|libnrnmech\.so",
      r"ProbAMPANMDA_EMS|ProbGABAAB_EMS")
def _(w):
    import h5py
    # only IntHH cells (their channels are in the library), so the synapses are what fails
    n = len(w.node_column("model_template"))
    w.h5_replace("nodes.h5", "nodes/cortex/0/model_template",
                 np.array(["hoc:IntHH"] * n, dtype=object).astype(h5py.string_dtype()))
    w.env["NRNMECH_LIB_PATH"] = str(w.libraries["reduced"])   # no KmHH, no synapses


@case("mechdir-broken-mod-file", "mechanisms", r"Broken\.mod",
      r"components\.mechanisms_dir")
def _(w):
    w.write("mechanisms/Broken.mod", "NEURON { SUFFIX Broken RANGE g }\nPARAMETER { g = \n")
    w.env["NEURODAMUS_CACHE_DIR"] = str(w.dir / "cache")


# ---- spike files (synapse_replay input) -----------------------------------------------------
@case("spikes-file-missing", "spikes", r"input_spikes\.h5",
      r"inputs\.thalamic_drive\.spike_file")
def _(w):
    w.remove("input_spikes.h5")


@case("spikes-not-hdf5", "spikes", r"input_spikes\.h5", r"inputs\.thalamic_drive\.spike_file")
def _(w):
    w.write("input_spikes.h5", "0.5 1\n1.5 2\n")


@case("spikes-node-ids-missing", "spikes", r"input_spikes\.h5",
      r"inputs\.thalamic_drive\.spike_file", r"node_ids")
def _(w):
    w.h5_delete("input_spikes.h5", "spikes/thalamus/node_ids")


@case("spikes-text-format", "spikes", r"input_spikes\.dat",
      r"inputs\.thalamic_drive\.spike_file")
def _(w):
    w.write("input_spikes.dat", "/scatter\n0.5 1\n")
    w.sim(lambda d: d["inputs"]["thalamic_drive"].update(spike_file="input_spikes.dat"))


# ---- command-line options -------------------------------------------------------------------
@case("option-unknown", "options", r"Usage:", r"--no-such-option", exit_code=2)
def _(w):
    w.args.append("--no-such-option")


@case("option-lb-mode-unknown", "options", r"Usage:", r"--lb-mode", exit_code=2)
def _(w):
    w.args.append("--lb-mode=Fastest")


@case("option-simulator-unknown", "options", r"Usage:", r"--simulator", exit_code=2)
def _(w):
    w.args.append("--simulator=NEST")


@case("option-dump-cell-state-not-gids", "options", r"Usage:", r"--dump-cell-state",
      exit_code=2)
def _(w):
    w.args.append("--dump-cell-state=first,second")


@case("option-output-path-is-a-file", "options", r"a_file", r"--output-path")
def _(w):
    w.write("a_file", "x\n")
    w.args.append(f"--output-path={w.dir / 'a_file'}")


@case("option-dump-cell-state-unknown-gid", "options", r"simulation_config\.json",
      r"--dump-cell-state", r"99999")
def _(w):
    w.args.append("--dump-cell-state=99999")


from . import cases_trust  # noqa: E402,F401 - issue 16's cases register themselves

CASE_NAMES = [c.name for c in CASES]
assert len(set(CASE_NAMES)) == len(CASE_NAMES), "duplicate case names"

__all__ = ["CASES", "CASE_NAMES", "Case"]
