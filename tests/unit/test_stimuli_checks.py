"""Input checks on parsed blocks, load-error translation, section-id numbering (no NEURON)."""

import json

import libsonata
import pytest

from neurodamus.circuit.section_ids import SectionIds
from neurodamus.stimuli.base import InputBlock
from neurodamus.stimuli.validation import check_block, check_raw_inputs


def _block(tmp_path, **kw):
    spec = dict(input_type="current_clamp", delay=0.0, duration=10.0, node_set="All")
    spec.update(kw)
    sim = libsonata.SimulationConfig(json.dumps({
        "run": {"tstop": 10, "dt": 0.025, "random_seed": 1}, "inputs": {"x": spec}}),
        str(tmp_path))
    return InputBlock("x", sim.input("x"), "sim.json", spec)


@pytest.mark.parametrize("kw, key, text", [
    (dict(module="noise", mean=0.1, variance=-1.0), "variance", "must be > 0"),
    (dict(module="noise", mean=0.1, variance=0.1, delay=-1.0), "delay", "must be >= 0"),
    (dict(module="shot_noise", rise_time=4.0, decay_time=1.0, rate=5, amp_mean=0.1,
          amp_var=0.01), "rise_time", "must be smaller than decay_time"),
    (dict(module="shot_noise", rise_time=1.0, decay_time=4.0, rate=5, amp_mean=0.0,
          amp_var=0.01), "amp_mean", "must be non-zero"),
    (dict(module="relative_shot_noise", rise_time=1.0, decay_time=4.0, mean_percent=5,
          sd_percent=1, relative_skew=2.0), "relative_skew", "must be in [0, 1]"),
    (dict(module="ornstein_uhlenbeck", tau=-1.0, mean=0.0, sigma=0.1), "tau", "must be >= 0"),
    (dict(module="ornstein_uhlenbeck", tau=1.0, mean=0.0, sigma=0.0), "sigma", "must be > 0"),
    (dict(module="pulse", amp_start=1.0, width=30.0, frequency=50.0), "width",
     "longer than the pulse period"),
    (dict(module="sinusoidal", amp_start=1.0, frequency=5.0, dt=0.0), "dt", "must be > 0"),
])
def test_value_checks_name_the_key(tmp_path, kw, key, text):
    problems = check_block(_block(tmp_path, **kw))
    assert any(k == key and text in t for k, t in problems), problems


@pytest.mark.parametrize("kw, key, text", [
    # libsonata refuses these at load time; the raw check names the key
    (dict(module="seclamp", input_type="voltage_clamp", voltage=-70.0, delay=5.0), "delay",
     "must be 0 for seclamp"),
    (dict(module="seclamp", input_type="voltage_clamp", voltage=-70.0,
          duration_levels=[5.0, 8.0], voltage_levels=[-60.0, -50.0]), "duration_levels",
     "more than the duration"),
    (dict(module="spatially_uniform_e_field", input_type="extracellular_stimulation",
          fields=[{"Ex": 1.0, "Ey": 0.0, "Ez": 0.0, "frequency": -3.0}]), "fields[0].frequency",
     "must be >= 0"),
    (dict(module="noise", mean=0.1, variance=-1.0), "variance", "must be > 0"),
])
def test_raw_value_checks_name_the_key(kw, key, text):
    spec = dict(input_type="current_clamp", delay=0.0, duration=10.0, node_set="All")
    spec.update(kw)
    messages = [str(i) for i in check_raw_inputs("sim.json", {"x": spec}).fatals]
    assert any(m.startswith(f"sim.json: inputs.x.{key}: ") and text in m for m in messages), \
        messages


def test_good_blocks_pass(tmp_path):
    assert check_block(_block(tmp_path, module="linear", amp_start=0.1)) == []
    assert check_block(_block(tmp_path, module="shot_noise", rise_time=1.0, decay_time=4.0,
                              rate=0, amp_mean=-0.1, amp_var=0.01)) == []


def test_missing_key_is_named_by_the_raw_check(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"run": {"tstop": 1, "dt": 0.1, "random_seed": 1},
                               "inputs": {"s": {"module": "linear", "delay": 0, "duration": 1,
                                                "input_type": "current_clamp",
                                                "node_set": "A"}}}))
    issues = check_raw_inputs(bad, json.loads(bad.read_text())["inputs"])
    assert [str(i) for i in issues.fatals] == [
        f"{bad}: inputs.s.amp_start: missing (required by module 'linear')"]


class _Sec:
    def __init__(self, name):
        self._name = f"Cell[0].{name}"

    def name(self):
        return self._name


class _Hoc:
    """Sections of a cell whose 3-section axon was replaced by 2 stubs."""

    def __init__(self):
        self.soma, self.axon = [_Sec("soma[0]")], [_Sec("axon[0]"), _Sec("axon[1]")]
        self.dend, self.apic = [_Sec("dend[0]"), _Sec("dend[1]")], [_Sec("apic[0]")]
        self.somatic, self.basal, self.apical = self.soma, self.dend, self.apic
        self.all = self.soma + self.axon + self.dend + self.apic
        self.nSecAxonalOrig = 3


def test_section_ids_follow_the_type_order_with_the_original_axon_count():
    hoc = _Hoc()
    ids = SectionIds(hoc)
    assert ids.offsets["soma"] == 0 and ids.offsets["axon"] == 1 and ids.offsets["dend"] == 4
    assert [ids.section(i).name()[8:] for i in (0, 1, 2, 4, 5, 6)] == \
        ["soma[0]", "axon[0]", "axon[1]", "dend[0]", "dend[1]", "apic[0]"]
    assert ids.section(3) is None and "does not exist" in ids.describe_missing(3)
    assert ids.section(7) is None and "out of range" in ids.describe_missing(7)
