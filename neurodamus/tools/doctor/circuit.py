"""Check 6: the simulation config's circuit (templates, morphologies, the mechanisms they
insert) and its output folders."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import libsonata
import numpy as np

from ...engine.summary import RECORD_NAME, read_record
from .report import FAIL, OK, Report

_INSERT = re.compile(r"\binsert\s+(\w+)")


def _strip_hoc_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"//.*", "", text)


def check_circuit(report: Report, settings) -> dict:
    """Files of the circuit; returns mechanism -> who needs it."""
    needs: dict[str, str] = {}
    for info in settings.node_populations.values():
        if info.type != "biophysical":
            continue
        pop = libsonata.NodeStorage(info.nodes_file).open_population(info.name)
        names = set(pop.attribute_names)
        if not {"model_template", "morphology"} <= names:
            report.add("circuit", FAIL, f"{info.nodes_file}: population '{info.name}' lacks "
                       f"{sorted({'model_template', 'morphology'} - names)}")
            continue
        sel = libsonata.Selection([(0, pop.size)])
        templates = sorted(set(pop.get_attribute("model_template", sel)))
        morphs = sorted(set(pop.get_attribute("morphology", sel)))
        missing_t = []
        for t in templates:
            name = t.removeprefix("hoc:")
            path = Path(info.emodels_dir) / f"{name}.hoc"
            if not path.is_file():
                missing_t.append(str(path))
                continue
            for mech in sorted(set(_INSERT.findall(_strip_hoc_comments(path.read_text(
                    errors="replace"))))):
                needs.setdefault(mech, f"template {name} ({path})")
        missing_m = [m for m in morphs if not (Path(info.morphologies_dir) /
                                              f"{m}.{info.morphology_ext}").is_file()]
        if missing_t:
            report.add("circuit", FAIL, f"population '{info.name}': {len(missing_t)} template "
                       f"file(s) missing", missing_t[:10],
                       fix=f"check model_template in {info.nodes_file} and "
                           f"biophysical_neuron_models_dir")
        if missing_m:
            report.add("circuit", FAIL, f"population '{info.name}': {len(missing_m)} of "
                       f"{len(morphs)} morphologies missing in {info.morphologies_dir}",
                       [f"{m}.{info.morphology_ext}" for m in missing_m[:10]],
                       fix="check morphologies_dir (or alternate_morphologies) in "
                           f"{settings.circuit_path}")
        if not missing_t and not missing_m:
            report.add("circuit", OK, f"population '{info.name}': {pop.size} cells, "
                       f"{len(templates)} template(s), {len(morphs)} morphologies, all found")
    for ep in settings.edge_populations:
        if ep.type != "chemical":
            continue
        pop = libsonata.EdgeStorage(ep.edges_file).open_population(ep.name)
        if "syn_type_id" not in pop.attribute_names or pop.size == 0:
            continue
        n = min(pop.size, 2_000_000)
        types = np.asarray(pop.get_attribute("syn_type_id", libsonata.Selection([(0, n)])))
        if (types >= 100).any():
            needs.setdefault("ProbAMPANMDA_EMS", f"excitatory edges of {ep.name}")
        if (types < 100).any():
            needs.setdefault("ProbGABAAB_EMS", f"inhibitory edges of {ep.name}")
    sim = settings.sim
    if any(sim.input(n).module.name == "synapse_replay" for n in sim.list_input_names):
        needs.setdefault("VecStim", "synapse_replay inputs")
    return needs


def _writable_folder(path: Path) -> tuple[bool, str]:
    """Whether ``path`` (existing or to be created) can be written."""
    probe_dir = path
    while not probe_dir.exists():
        if probe_dir.parent == probe_dir:
            return False, "no existing parent folder"
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        return False, f"{probe_dir} is a file"
    try:
        with tempfile.NamedTemporaryFile(dir=probe_dir, prefix=".neurodamus-doctor-"):
            pass
    except OSError as exc:
        return False, f"{probe_dir}: {exc.strerror}"
    return True, ""


def check_output(report: Report, settings) -> None:
    out = settings.output_dir
    ok, why = _writable_folder(out)
    if not ok:
        report.add("output", FAIL, f"{settings.config_path}: output.output_dir: cannot write "
                   f"{out}: {why}",
                   fix="choose a writable folder (output.output_dir or --output-path)")
    else:
        record = read_record(out) if out.is_dir() else None
        extra = []
        if record is not None:
            extra.append(f"holds a {record.get('status', '?')} run of "
                         f"{record.get('config', '?')}: a new run first removes its "
                         f"{len(record.get('files', []))} file(s)")
        elif out.is_dir() and any(out.iterdir()):
            extra.append(f"not empty and without {RECORD_NAME}: files named like this run's "
                         f"outputs will be moved aside")
        report.add("output", OK, f"{out} is writable", extra)
    marker_dir = Path(os.path.abspath(settings.config_path)).parent
    ok, why = _writable_folder(marker_dir)
    if not ok:
        report.add("output", FAIL, f"the SUCCESS marker goes next to the config, but {why}",
                   fix="run from a copy of the config in a writable folder")
