"""Point neurons (mixed with a biophysical cell) and gap-junction wiring (issue 7).

The point-neuron circuit has two rings: LIFCell (passive soma + PointLIF, Exp2Syn edges) and
IFCell (IntFire1, no section: events go to the artificial cell), a biophysical BallNa in the
LIF loop (Exp2Syn_synapse edge in, chemical ProbAMPANMDA_EMS edge out onto a point neuron),
and a current kick to LIF 0. Spikes must be identical on 1, 2 and 3 ranks.
"""

import numpy as np
import pytest

from tests.helpers import read_spikes, spikes_equal
from tests.integration.test_features_kit import Circuit, chemical_columns, feature_mechanisms, run

pytestmark = pytest.mark.mpi
__all__ = ["feature_mechanisms"]


def exp2syn(n, g, delay, tau1=0.5, tau2=3.0, erev=0.0):
    return {"conductance": np.full(n, g, np.float32), "delay": np.full(n, delay, np.float32),
            "tau1": np.full(n, tau1, np.float32), "tau2": np.full(n, tau2, np.float32),
            "erev": np.full(n, erev, np.float32)}


@pytest.fixture(scope="module")
def ring(tmp_path_factory, feature_mechanisms):
    folder = tmp_path_factory.mktemp("ring")
    c = Circuit(folder, feature_mechanisms)
    c.population("bio", 1, "BallNa")
    c.population("ifc", 3, "IFCell", model_type="point_process")
    c.population("lif", 4, "LIFCell", model_type="point_process")
    c.edge_population("lif__lif", "lif", "lif", [0, 1, 2, 3], [1, 2, 3, 0],
                      exp2syn(4, 0.005, 2.0), "point_process")
    c.edge_population("ifc__ifc", "ifc", "ifc", [0, 1, 2], [1, 2, 0], exp2syn(3, 1.5, 4.0),
                      "point_process")
    c.edge_population("lif__ifc", "lif", "ifc", [0], [0], exp2syn(1, 1.5, 1.0),
                      "point_process")
    c.edge_population("lif__bio", "lif", "bio", [1], [0], exp2syn(1, 0.05, 1.5),
                      "Exp2Syn_synapse")
    c.edge_population("bio__lif", "bio", "lif", [0], [3],
                      chemical_columns(1, conductance=0.02, delay=1.0))
    kick = {"module": "linear", "input_type": "current_clamp", "delay": 1.0, "duration": 2.0,
            "amp_start": 2.0, "node_set": "kick"}
    cfg = c.config(node_sets={"kick": {"population": "lif", "node_id": [0]}},
                   run={"tstop": 100.0}, inputs={"kick": kick})
    return {ranks: read_spikes(run(cfg, ranks=ranks)[1] / "out.h5") for ranks in (1, 2, 3)}


def test_point_neurons_spike_and_drive_each_other(ring):
    spikes = ring[1]
    assert set(spikes) == {"bio", "ifc", "lif"}
    lif_t, lif_id = spikes["lif"]
    assert lif_t[0] == pytest.approx(1.1, abs=0.05) and lif_id[0] == 0     # the kick
    assert set(lif_id.tolist()) == {0, 1, 2, 3}
    if_t, if_id = spikes["ifc"]
    # IntFire1 ring: lif 0 -> ifc 0 (1 ms), then every 4 ms around the ring
    assert if_t[0] == pytest.approx(lif_t[0] + 1.0, abs=1e-9) and if_id[0] == 0
    for k in (1, 2):
        assert np.min(np.abs(if_t[if_id == k] - (if_t[0] + 4.0 * k))) < 1e-9
    assert len(spikes["bio"][0]) >= 1                                     # the mixed cell


@pytest.mark.parametrize("ranks", [2, 3])
def test_point_neuron_spikes_are_rank_invariant(ring, ranks):
    assert spikes_equal(ring[1], ring[ranks])


# ---- gap junctions: wiring errors --------------------------------------------------------------
def gap_circuit(folder, mechanisms, aff, eff, src=(0, 1), tgt=(1, 0)):
    c = Circuit(folder, mechanisms)
    c.population("balls", 2, "Ball")
    n = len(src)
    c.edge_population("balls__balls__electrical", "balls", "balls", src, tgt,
                      {"conductance": np.full(n, 1.0, np.float32),
                       "afferent_junction_id": np.asarray(aff, np.int64),
                       "efferent_junction_id": np.asarray(eff, np.int64),
                       "afferent_section_id": np.zeros(n, np.int32),
                       "afferent_section_pos": np.full(n, 0.5, np.float32)},
                      etype="electrical")
    return c.config(run={"tstop": 5.0})


def test_gap_junction_without_partner_is_an_error(tmp_path, feature_mechanisms):
    cfg = gap_circuit(tmp_path, feature_mechanisms, aff=[0], eff=[1], src=[0], tgt=[1])
    res, _ = run(cfg, ranks=2, expect_ok=False)
    assert res.returncode != 0
    assert "networks.edges: population 'balls__balls__electrical'" in res.stderr
    assert "gap junction(s) without partner: efferent_junction_id 1 item(s): [1]" in res.stderr
    assert res.stderr.count("without partner") == 1
    assert "Traceback" not in res.stderr


def test_gap_junction_id_published_twice_is_an_error(tmp_path, feature_mechanisms):
    cfg = gap_circuit(tmp_path, feature_mechanisms, aff=[0, 0], eff=[0, 0])
    res, _ = run(cfg, ranks=2, expect_ok=False)
    assert res.returncode != 0
    assert "afferent_junction_id used by more than one edge: 1 item(s): [0]" in res.stderr


def test_gap_junctions_ignore_overrides(tmp_path, feature_mechanisms):
    cfg = gap_circuit(tmp_path, feature_mechanisms, aff=[0, 1], eff=[1, 0])
    import json
    data = json.loads(cfg.read_text())
    data["connection_overrides"] = [{"name": "off", "source": "balls", "target": "balls",
                                     "weight": 0.0}]
    cfg.write_text(json.dumps(data))
    res, _ = run(cfg)
    assert "Connection overrides ignored for gap junctions 'balls__balls__electrical'" \
        in res.stdout
    assert "WARNING" not in res.stdout
