"""Allen-V1-style point circuits (issue 15, item 4): replay through point_process and
Exp2Syn_synapse edges, tau1/tau2/erev only where an Exp2Syn is made, modoverride "Exp2Syn"
with the driver's Exp2SynHelper.hoc, and --dump-cell-state of point cells. Spikes identical on
1 and 2 ranks. Fixture: tests/fixtures/allen_ring.py.
"""

import shutil

import numpy as np
import pytest

from tests.fixtures import allen_ring
from tests.helpers import read_spikes, spikes_equal
from tests.integration.test_features_kit import (
    Circuit,
    cell_state,
    chemical_columns,
    feature_mechanisms,
    run,
    write_spikes,
)

pytestmark = pytest.mark.mpi
__all__ = ["feature_mechanisms"]


def _offsets(out):
    lines = (out / "populations_offset.dat").read_text().split()
    return {line.split("::")[0]: int(line.split("::")[1]) for line in lines}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, feature_mechanisms):
    folder = tmp_path_factory.mktemp("allen")
    config = allen_ring.write(folder, feature_mechanisms)
    # gids: offsets in population-name order (lgn, v1_bio, v1_if, v1_lif); checked below
    gids = "1000,2002,3000"
    out = {}
    for ranks in (1, 2):
        _, out[ranks] = run(config, ranks=ranks, args=[f"--dump-cell-state={gids}"])
    return out


def test_offsets_as_assumed(runs):
    assert _offsets(runs[1]) == {"lgn": 0, "v1_bio": 1000, "v1_if": 2000, "v1_lif": 3000,
                                 "v1_off": 4000}


def test_replay_into_an_artificial_cell_through_a_point_process_edge(runs):
    times, ids = read_spikes(runs[1] / "out.h5")["v1_if"]
    first = times[ids == 2][0]
    # IntFire1 with weight 1.5 fires when the event arrives: spike time + edge delay
    assert first == pytest.approx(allen_ring.LGN_IF_SPIKE + allen_ring.LGN_IF_DELAY, abs=1e-9)


def test_replay_through_exp2syn_edges_starts_the_ring(runs):
    spikes = read_spikes(runs[1] / "out.h5")
    lif_t, lif_id = spikes["v1_lif"]
    # lgn 0 replayed at 5 ms through the Exp2Syn_synapse edge (delay 1 ms) fires v1_lif 0
    # within a few ms, before the ring reaches it (8.3 ms)
    assert 6.0 < lif_t[lif_id == 0][0] < 8.0
    assert set(lif_id.tolist()) == {0, 1, 2}
    _, if_id = spikes["v1_if"]
    assert set(if_id.tolist()) == {0, 1, 2}
    assert len(spikes["v1_bio"][0]) >= 1 and spikes["v1_bio"][0][0] > 10.0 + 1.5
    assert "v1_off" not in spikes or len(spikes["v1_off"][0]) == 0


def test_spikes_identical_on_two_ranks(runs):
    assert spikes_equal(read_spikes(runs[1] / "out.h5"), read_spikes(runs[2] / "out.h5"))


def test_modoverride_exp2syn_uses_the_edge_columns(runs):
    state = cell_state(runs[1], 1000)
    assert [s["type"] for s in state["synapses"]] == ["Exp2Syn", "Exp2Syn"]
    for syn in state["synapses"]:
        for key, column in (("tau1", "tau1"), ("tau2", "tau2"), ("e", "erev")):
            assert syn["params"][key] == pytest.approx(allen_ring.BIO_EXP2SYN[column], rel=1e-6)
    replayed = [nc for nc in state["netcons"] if nc["source_gid"] < 0]
    assert len(replayed) == 2
    assert all(nc["weight"][0] == pytest.approx(0.03, rel=1e-6) for nc in replayed)


def test_cell_state_of_a_point_neuron_lists_its_exp2syn_synapses(runs):
    state = cell_state(runs[1], 3000)     # v1_lif 0
    assert state["sections"][0]["name"].endswith("soma[0]")
    assert sorted(s["type"] for s in state["synapses"]) == ["Exp2Syn", "Exp2Syn"]
    sources = sorted(nc["source_gid"] for nc in state["netcons"])
    assert sources == [-1, 2001]          # lgn 0 replayed, v1_if 1 of the ring
    assert state["pointcell"]["type"] == "PointLIF"


def test_cell_state_of_an_artificial_cell(runs):
    state = cell_state(runs[2], 2002)     # v1_if 2 (written by whichever rank holds it)
    assert state["sections"] == [] and state["synapses"] == []
    assert state["pointcell"]["type"] == "IntFire1"
    assert state["pointcell"]["params"]["tau"] == 10
    netcons = sorted(state["netcons"], key=lambda nc: nc["source_gid"])
    assert [nc["source_gid"] for nc in netcons] == [-1, 3002]
    assert all(nc["target"].startswith("IntFire1") for nc in netcons)
    assert netcons[0]["delay"] == pytest.approx(allen_ring.LGN_IF_DELAY)


def test_tau_columns_are_required_where_an_exp2syn_is_made(tmp_path, feature_mechanisms):
    """Simulating v1_off (a soma: Exp2Syn) makes its tau-less afferent edges an error."""
    config = allen_ring.write(tmp_path, feature_mechanisms, node_set="with_off")
    res, _ = run(config, expect_ok=False)
    assert res.returncode != 0
    assert "population 'lgn__v1_off': column 'tau1' is missing" in res.stdout + res.stderr
    assert "Traceback" not in res.stderr


@pytest.fixture(scope="module")
def channels_only(tmp_path_factory):
    """A mechanism library without ProbAMPANMDA_EMS / ProbGABAAB_EMS (BallNa's channels)."""
    from neurodamus import paths
    from neurodamus.tools.mechanisms import build_mechanisms

    folder = tmp_path_factory.mktemp("channels_only")
    for name in ("NaHH.mod", "KdrHH.mod"):
        shutil.copy2(paths.models_dir() / "minicol" / "mod" / name, folder / name)
    build_mechanisms([folder], log=lambda *_: None)
    return folder


def _exp2syn_only_circuit(folder, mechanisms, modoverride=True):
    c = Circuit(folder, mechanisms)
    c.population("lgn", 1, model_type="virtual")
    c.population("v1_bio", 1, "BallNa")
    c.edge_population("lgn__v1_bio", "lgn", "v1_bio", [0, 0], [0, 0],
                      chemical_columns(2, conductance=0.03, delay=1.5,
                                       **{k: np.full(2, v, np.float32)
                                          for k, v in allen_ring.BIO_EXP2SYN.items()}))
    write_spikes(c.folder / "lgn.h5", "lgn", [0], [5.0])
    replay = {"module": "synapse_replay", "input_type": "spikes", "delay": 0.0,
              "duration": 30.0, "spike_file": str(c.folder / "lgn.h5"), "node_set": "v1_bio"}
    overrides = [{"name": "exp2syn", "source": "lgn", "target": "v1_bio",
                  "modoverride": "Exp2Syn"}] if modoverride else []
    return c.config(run={"tstop": 30.0}, inputs={"lgn": replay},
                    connection_overrides=overrides)


def test_modoverride_exp2syn_needs_no_default_synapse_mechanisms(tmp_path, channels_only):
    _, out = run(_exp2syn_only_circuit(tmp_path, channels_only))
    times, _ = read_spikes(out / "out.h5")["v1_bio"]
    assert len(times) >= 1 and times[0] > 5.0 + 1.5


def test_default_synapse_mechanism_missing_names_the_edges(tmp_path, channels_only):
    res, _ = run(_exp2syn_only_circuit(tmp_path, channels_only, modoverride=False),
                 expect_ok=False)
    assert res.returncode != 0
    assert "lacks the synapse mechanism 'ProbAMPANMDA_EMS' needed by the chemical edges of " \
           "'lgn__v1_bio'" in res.stdout + res.stderr
