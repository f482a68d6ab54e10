"""The t = 0 row of density-mechanism current reports (compatibility §11 item 17; issue 15,
item 7): a bare mechanism name (``pas`` read as ``pas.i``) reports exactly 0 at t = 0 in
compartment and summation reports, as the established driver's files do; every later row is
the current NEURON used for the step that ended there, g·(v_previous_row - e); voltages and
named variables (``pas.i``) are unchanged from row 0.
"""

import libsonata
import numpy as np
import pytest

from tests.helpers import run_neurodamus
from tests.scientific.circuits import (
    PASSIVE_AREA,
    PASSIVE_E,
    PASSIVE_G,
    write_circuit,
    write_simulation,
)

V_INIT = -80.0   # away from e_pas: pas.i is not 0 after initialisation
TSTOP, DT = 5.0, 0.025


def _report(name, variable, rtype="compartment", **extra):
    spec = {"type": rtype, "variable_name": variable, "dt": DT, "start_time": 0.0,
            "end_time": TSTOP, "cells": "All"}
    spec.update(extra)
    return {name: spec}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    d = tmp_path_factory.mktemp("first_row")
    write_circuit(d, {"cells": {"type": "biophysical", "n": 2}},
                  node_sets={"All": {"population": "cells"}})
    reps = {}
    for args in (("v", "v"), ("pas", "pas"), ("pas_i", "pas.i"),
                 ("pas_sum", "pas", "summation"),
                 ("pas_sum_soma", "pas", "summation", {"sections": "soma"})):
        reps.update(_report(*args[:3], **(args[3] if len(args) > 3 else {})))
    config = write_simulation(d, {}, tstop=TSTOP, dt=DT, v_init=V_INIT, reports=reps)
    proc = run_neurodamus([config])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = {}
    for name in reps:
        frame = libsonata.ElementReportReader(str(d / "output" / f"{name}.h5"))["cells"].get()
        out[name] = np.asarray(frame.data, dtype=float)
    return out


def _pas_current(v):
    return PASSIVE_G * (v - PASSIVE_E)   # mA/cm²


def test_voltage_first_row_is_v_init(reports):
    assert np.all(reports["v"][0] == np.float32(V_INIT))


def test_bare_density_current_is_zero_at_t0_then_g_v_minus_e(reports):
    assert np.all(reports["pas"][0] == 0.0)
    expected = _pas_current(reports["v"][:-1])   # currents are evaluated before v advances
    np.testing.assert_allclose(reports["pas"][1:], expected, rtol=1e-5)


def test_named_variable_is_not_zeroed(reports):
    np.testing.assert_allclose(reports["pas_i"][0], _pas_current(V_INIT), rtol=1e-6)
    np.testing.assert_array_equal(reports["pas_i"][1:], reports["pas"][1:])


@pytest.mark.parametrize("name", ["pas_sum", "pas_sum_soma"])
def test_summation_of_bare_density_current(reports, name):
    assert np.all(reports[name][0] == 0.0)
    # one compartment of PASSIVE_AREA µm²: mA/cm² x area/100 = nA
    expected = _pas_current(reports["v"][:-1]) * PASSIVE_AREA / 100.0
    np.testing.assert_allclose(reports[name][1:], expected, rtol=1e-5)
