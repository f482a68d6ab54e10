"""Issue 16's cases: circuit data, replay spikes, config values, typos, unreadable files,
mechanism folders and output names (registered into ``cases.CASES``).

Data mutations touch an edge or spike onto the highest node id where that matters: on 2 ranks
only the last rank reads it, and the run must still fail with the same message on all ranks.
"""

from __future__ import annotations

import math

import numpy as np

from .cases import case

EDGES = "edges/cortex__cortex__chemical"
PROJ = "edges/thalamus__cortex__chemical"
SPIKES = "spikes/thalamus"
REPORT = {"type": "compartment", "cells": "Cortex", "variable_name": "v", "sections": "soma",
          "dt": 0.1, "start_time": 0.0, "end_time": 50.0}


# ---- circuit data that would change results silently ----------------------------------------
@case("edges-delay-zero", "edges", r"edges\.h5", r"delay", r"edge \d+", r"> 0")
def _(w):
    w.h5_set("edges.h5", f"{EDGES}/0/delay", w.last_edge(), 0.0)


@case("edges-delay-negative", "edges", r"edges\.h5", r"delay", r"-1 ms")
def _(w):
    w.h5_set("edges.h5", f"{EDGES}/0/delay", w.last_edge(), -1.0)


@case("edges-delay-below-dt", "edges", r"edges\.h5", r"delay", r"below run\.dt")
def _(w):
    w.h5_set("edges.h5", f"{EDGES}/0/delay", w.last_edge(), 0.01)


@case("config-dt-above-smallest-delay", "edges", r"edges\.h5", r"delay", r"run\.dt = 5 ms")
def _(w):
    w.sim(lambda d: d["run"].update(dt=5.0))


@case("edges-conductance-nan", "edges", r"edges\.h5", r"conductance", r"nan")
def _(w):
    w.h5_set("edges.h5", f"{EDGES}/0/conductance", w.last_edge(), np.nan)


@case("edges-conductance-inf", "edges", r"edges\.h5", r"conductance", r"inf")
def _(w):
    w.h5_set("edges.h5", f"{EDGES}/0/conductance", w.last_edge(), np.inf)


@case("edges-decay-time-nan", "edges", r"edges\.h5", r"decay_time", r"nan")
def _(w):
    w.h5_set("edges.h5", f"{EDGES}/0/decay_time", w.last_edge(), np.nan)


@case("projections-delay-nan", "edges", r"projections\.h5", r"delay", r"nan")
def _(w):
    w.h5_set("projections.h5", f"{PROJ}/0/delay",
             w.last_edge("projections.h5", "thalamus__cortex__chemical"), np.nan)


@case("edges-section-pos-above-one", "edges", r"edges\.h5", r"afferent_section_pos",
      r"outside \[0, 1\]")
def _(w):
    w.h5_set("edges.h5", f"{EDGES}/0/afferent_section_pos", w.last_edge(), 1.5)


@case("edges-section-pos-negative", "edges", r"edges\.h5", r"afferent_section_pos",
      r"outside \[0, 1\]")
def _(w):
    w.h5_set("edges.h5", f"{EDGES}/0/afferent_section_pos", w.last_edge(), -0.25)


@case("edges-section-id-beyond-morphology", "edges", r"edges\.h5", r"afferent_section_id",
      r"section 5000 of gid \d+", r"beyond the cell's \d+ sections")
def _(w):
    w.h5_set("edges.h5", f"{EDGES}/0/afferent_section_id", w.last_edge(), 5000)


@case("edges-section-id-negative", "edges", r"edges\.h5", r"afferent_section_id", r"< 0")
def _(w):
    w.h5_set("edges.h5", f"{EDGES}/0/afferent_section_id", w.last_edge(), -3)


@case("edges-target-out-of-range", "edges", r"edges\.h5", r"target_node_id", r"100000")
def _(w):
    w.h5_set("edges.h5", f"{EDGES}/target_node_id", w.last_edge(), 100000)


@case("edges-column-short", "edges", r"edges\.h5", r"cortex__cortex__chemical/0/conductance",
      r"short column")
def _(w):
    w.h5_shorten("edges.h5", f"{EDGES}/0/conductance")


@case("nodes-column-short", "nodes", r"nodes\.h5", r"nodes/cortex/0/morphology",
      r"short column")
def _(w):
    w.h5_shorten("nodes.h5", "nodes/cortex/0/morphology")


@case("nodes-position-nan", "nodes", r"nodes\.h5", r"population 'cortex': x",
      r"node \d+ has nan")
def _(w):
    n = len(w.node_column("x"))
    w.h5_set("nodes.h5", "nodes/cortex/0/x", n - 1, np.nan)


@case("circuit-edge-source-population-missing", "circuit", r"circuit_config\.json",
      r"networks\.edges\[1\]\.populations\.thalamus__cortex__chemical", r"'ghost'",
      r"projections\.h5")
def _(w):
    import h5py
    with h5py.File(w.path("projections.h5"), "r+") as fd:
        fd[f"{PROJ}/source_node_id"].attrs["node_population"] = "ghost"


@case("circuit-edge-target-population-missing", "circuit", r"circuit_config\.json",
      r"networks\.edges\[0\]\.populations\.cortex__cortex__chemical", r"'nowhere'")
def _(w):
    import h5py
    with h5py.File(w.path("edges.h5"), "r+") as fd:
        fd[f"{EDGES}/target_node_id"].attrs["node_population"] = "nowhere"


# ---- replay spikes ----------------------------------------------------------------------------
@case("replay-time-nan", "spikes", r"input_spikes\.h5", r"/spikes/thalamus/timestamps",
      r"nan")
def _(w):
    w.h5_set("input_spikes.h5", f"{SPIKES}/timestamps", 0, math.nan)


@case("replay-time-negative", "spikes", r"input_spikes\.h5", r"/spikes/thalamus/timestamps",
      r"-2\.5")
def _(w):
    w.h5_set("input_spikes.h5", f"{SPIKES}/timestamps", 0, -2.5)


@case("replay-node-id-outside-population", "spikes", r"input_spikes\.h5",
      r"/spikes/thalamus/node_ids", r"node id 100000", r"outside population 'thalamus'")
def _(w):
    w.h5_set("input_spikes.h5", f"{SPIKES}/node_ids", 0, 100000)


# ---- config values ----------------------------------------------------------------------------
@case("config-random-seed-fraction", "config", r"simulation_config\.json", r"run\.random_seed",
      r"1\.5")
def _(w):
    w.sim(lambda d: d["run"].update(random_seed=1.5))


@case("config-random-seed-negative", "config", r"simulation_config\.json", r"run\.random_seed",
      r"-1")
def _(w):
    w.sim(lambda d: d["run"].update(random_seed=-1))


@case("config-random-seed-too-large", "config", r"simulation_config\.json", r"run\.random_seed",
      r"4294967296")
def _(w):
    w.sim(lambda d: d["run"].update(random_seed=2**32))


@case("config-synapse-seed-too-large", "config", r"simulation_config\.json",
      r"run\.synapse_seed", r"outside 0\.\.4294967295")
def _(w):
    w.sim(lambda d: d["run"].update(synapse_seed=2**40))


@case("config-dt-longer-than-tstop", "config", r"simulation_config\.json", r"run\.dt",
      r"longer than the whole run")
def _(w):
    w.sim(lambda d: d["run"].update(dt=80.0))


@case("config-tstop-absurd", "config", r"simulation_config\.json", r"run\.tstop",
      r"4e\+13 steps")
def _(w):
    w.sim(lambda d: d["run"].update(tstop=1e12))


@case("config-variable-undefined-output", "config", r"simulation_config\.json",
      r"output\.output_dir", r"\$NO_SUCH_DIR")
def _(w):
    w.sim(lambda d: d["output"].update(output_dir="$NO_SUCH_DIR/out"))


@case("circuit-variable-undefined", "circuit", r"circuit_config\.json",
      r"components\.morphologies_dir", r"\$MORPH_ROOT")
def _(w):
    w.circuit(lambda d: d["components"].update(morphologies_dir="$MORPH_ROOT/morphologies"))


@case("config-node-set-node-id-absent", "config", r"node_sets\.json", r"Ghosts",
      r"node_id 999 is not a node of cortex")
def _(w):
    w.edit_json("node_sets.json", lambda d: d.update(Ghosts={"population": "cortex",
                                                              "node_id": [0, 999]}))
    w.sim(lambda d: d.update(node_set="Ghosts"))


@case("config-input-node-set-node-id-absent", "config", r"node_sets\.json", r"FarAway",
      r"node_id 4096")
def _(w):
    w.edit_json("node_sets.json", lambda d: d.update(FarAway={"population": "cortex",
                                                               "node_id": [4096]}))
    w.sim(lambda d: d["inputs"]["thalamic_drive"].update(node_set="FarAway"))


# ---- outputs ----------------------------------------------------------------------------------
@case("output-spikes-file-empty", "outputs", r"simulation_config\.json", r"output\.spikes_file",
      r"is empty")
def _(w):
    w.sim(lambda d: d["output"].update(spikes_file=""))


@case("output-spikes-file-escapes", "outputs", r"simulation_config\.json",
      r"output\.spikes_file", r"outside the output folder")
def _(w):
    w.sim(lambda d: d["output"].update(spikes_file="../../stolen.h5"))


@case("output-report-file-is-spikes-file", "outputs", r"simulation_config\.json",
      r"reports\.soma\.file_name", r"out\.h5 is also the file of output\.spikes_file")
def _(w):
    w.sim(lambda d: d.update(reports={"soma": dict(REPORT, file_name="out.h5")}))


@case("output-report-files-collide", "outputs", r"simulation_config\.json",
      r"reports\.(soma|again)\.file_name", r"soma\.h5 is also the file of report")
def _(w):
    w.sim(lambda d: d.update(reports={"soma": dict(REPORT),
                                      "again": dict(REPORT, file_name="soma")}))


@case("output-report-file-escapes", "outputs", r"simulation_config\.json",
      r"reports\.soma\.file_name", r"outside the output folder")
def _(w):
    w.sim(lambda d: d.update(reports={"soma": dict(REPORT, file_name="/tmp/soma.h5")}))


@case("output-spikes-file-in-subfolder", "outputs", r"simulation_config\.json",
      r"output\.spikes_file", r"folder part", warns=True)
def _(w):
    w.sim(lambda d: d["output"].update(spikes_file="spikes/out.h5"))


# ---- typos (warnings: the run goes on) ----------------------------------------------------------
@case("keys-conditions-typo", "keys", r"simulation_config\.json", r"conditions\.celcius",
      r"did you mean 'celsius'", warns=True)
def _(w):
    w.sim(lambda d: d["conditions"].update(celcius=30.0))


@case("keys-top-level-typo", "keys", r"simulation_config\.json", r"node_sets_fil\b",
      r"did you mean 'node_sets_file'", warns=True)
def _(w):
    w.sim(lambda d: d.update(node_sets_fil="node_sets.json"))


@case("keys-run-unknown", "keys", r"simulation_config\.json", r"run\.integration",
      r"unknown key", warns=True)
def _(w):
    w.sim(lambda d: d["run"].update(integration="euler"))


# ---- unreadable files -----------------------------------------------------------------------
@case("config-not-utf8", "config", r"simulation_config\.json", r"not UTF-8", r"0xff")
def _(w):
    text = w.path("simulation_config.json").read_bytes()
    w.write("simulation_config.json", text.replace(b'"NEURON"', b'"NEUR\xffON"', 1))


@case("config-nested-absurdly", "config", r"simulation_config\.json", r"nested \d+ levels")
def _(w):
    deep = "[" * 5000 + "]" * 5000
    text = w.path("simulation_config.json").read_text()
    w.write("simulation_config.json", text.replace('"version": 1', f'"metadata": {deep}, '
                                                                   f'"version": 1', 1))


@case("circuit-not-utf8", "circuit", r"circuit_config\.json", r"not UTF-8")
def _(w):
    text = w.path("circuit_config.json").read_bytes()
    w.write("circuit_config.json", text.replace(b"$BASE_DIR/nodes.h5", b"$BASE_DIR/n\xe9.h5", 1))


@case("nodes-truncated", "nodes", r"nodes\.h5", r"networks\.nodes\[0\]\.nodes_file",
      r"truncated or corrupted")
def _(w):
    w.truncate("nodes.h5")


@case("edges-truncated", "edges", r"edges\.h5", r"networks\.edges\[0\]\.edges_file",
      r"truncated or corrupted")
def _(w):
    w.truncate("edges.h5")


@case("spikes-truncated", "spikes", r"input_spikes\.h5", r"inputs\.thalamic_drive\.spike_file",
      r"truncated|not an HDF5")
def _(w):
    w.truncate("input_spikes.h5", 0.3)


@case("edges-file-is-a-nodes-file", "edges", r"nodes\.h5", r"networks\.edges\[0\]\.edges_file",
      r"holds nodes")
def _(w):
    w.circuit(lambda d: d["networks"]["edges"][0].update(edges_file="$BASE_DIR/nodes.h5"))


@case("nodes-file-is-an-edges-file", "nodes", r"edges\.h5", r"networks\.nodes\[0\]\.nodes_file",
      r"holds edges")
def _(w):
    w.circuit(lambda d: d["networks"]["nodes"][0].update(nodes_file="$BASE_DIR/edges.h5"))


# ---- mechanism folders ------------------------------------------------------------------------
@case("mechdir-empty", "mechanisms", r"empty_mechanisms", r"components\.mechanisms_dir",
      r"no \.mod files")
def _(w):
    w.path("empty_mechanisms").mkdir()
    w.circuit(lambda d: d["components"].update(mechanisms_dir="$BASE_DIR/empty_mechanisms"))


@case("mechdir-two-broken-mod-files", "mechanisms", r"BrokenA\.mod", r"BrokenB\.mod",
      r"components\.mechanisms_dir", r"nothing was compiled")
def _(w):
    w.write("mechanisms/BrokenA.mod", "NEURON { SUFFIX BrokenA RANGE g }\nPARAMETER { g = \n")
    w.write("mechanisms/BrokenB.mod", "NEURON { SUFFIX BrokenB }\nBREAKPOINT { x = ( }\n")
    w.env["NEURODAMUS_CACHE_DIR"] = str(w.dir / "cache")
