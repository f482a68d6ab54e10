"""Unknown keys in the known sections of the simulation config: one warning each.

libsonata ignores keys it does not know, so ``"celcius": 30`` silently runs at the default
temperature. The key lists follow the SONATA simulation config specification; a close known
key is offered as "did you mean".
"""

from __future__ import annotations

import difflib

from .inventory import raw_simulation

TOP_LEVEL = {"version", "manifest", "network", "target_simulator", "node_sets_file", "node_set",
             "compartment_sets_file", "run", "output", "conditions", "inputs", "reports",
             "connection_overrides", "metadata", "beta_features"}
RUN = {"tstop", "dt", "random_seed", "spike_threshold", "integration_method", "stimulus_seed",
       "ionchannel_seed", "minis_seed", "synapse_seed", "electrodes_file"}
CONDITIONS = {"celsius", "v_init", "spike_location", "extracellular_calcium",
              "randomize_gaba_rise_time", "mechanisms", "modifications"}
OUTPUT = {"output_dir", "log_file", "spikes_file", "spikes_sort_order"}
REPORT = {"cells", "sections", "type", "scaling", "compartments", "variable_name", "unit", "dt",
          "start_time", "end_time", "file_name", "enabled", "compartment_set", "electrodes_file"}
OVERRIDE = {"name", "source", "target", "weight", "spont_minis", "synapse_configure",
            "modoverride", "synapse_delay_override", "delay", "neuromodulation_dtc",
            "neuromodulation_strength"}
#: the keys of every input module together (each module checks its own required ones)
INPUT = {"module", "input_type", "delay", "duration", "node_set", "compartment_set",
         "amp_start", "amp_end", "width", "frequency", "percent_start", "percent_end",
         "percent_less", "mean", "mean_percent", "variance", "voltage", "series_resistance",
         "duration_levels", "voltage_levels", "spike_file", "source", "random_seed", "dt",
         "rise_time", "decay_time", "rate", "amp_mean", "amp_var", "amp_cv", "relative_skew",
         "reversal", "tau", "sd", "sd_percent", "represents_physical_electrode", "fields",
         "ramp_up_time", "ramp_down_time"}


def _unknown(block, known, where, path, issues):
    if not isinstance(block, dict):
        return
    for key in block:
        if key in known or not isinstance(key, str):
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        issues.warning(path, f"{where}{key}", f"unknown key, ignored{hint}")


def check_unknown_keys(settings, issues) -> None:
    raw = raw_simulation(settings)
    path = settings.config_path
    _unknown(raw, TOP_LEVEL, "", path, issues)
    for section, known in (("run", RUN), ("conditions", CONDITIONS), ("output", OUTPUT)):
        _unknown(raw.get(section), known, f"{section}.", path, issues)
    for kind, known in (("reports", REPORT), ("inputs", INPUT)):
        blocks = raw.get(kind)
        if isinstance(blocks, dict):
            for name, block in blocks.items():
                _unknown(block, known, f"{kind}.{name}.", path, issues)
    overrides = raw.get("connection_overrides")
    if isinstance(overrides, list):
        for i, block in enumerate(overrides):
            _unknown(block, OVERRIDE, f"connection_overrides[{i}].", path, issues)


CHECKS = (check_unknown_keys,)

__all__ = ["CHECKS", "check_unknown_keys"]
