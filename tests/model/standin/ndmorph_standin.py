"""Python half of the throw-away ndmorph.hoc stand-in (tests only)."""

import os

import morphio
from neuron import h

_ARRAYS = (("axon", morphio.SectionType.axon),
           ("dend", morphio.SectionType.basal_dendrite),
           ("apic", morphio.SectionType.apical_dendrite))


def load(cell, morph_dir, morph_file):
    m = morphio.Morphology(os.path.join(morph_dir, morph_file))
    by_type = {t: [s for s in m.sections if s.type == t] for _, t in _ARRAYS}
    hsec = {}
    for name, t in _ARRAYS:
        n = len(by_type[t])
        if n:
            h.execute1(f"create {name}[{n}]", cell)
            arr = getattr(cell, name)
            for k, s in enumerate(by_type[t]):
                hsec[s.id] = arr[k]
        else:
            h.execute1(f"{name}[0] delete_section()", cell)
    soma = cell.soma[0]
    soma.pt3dclear()
    pts, diams = m.soma.points, m.soma.diameters
    if len(pts) == 1:  # one-point soma: a cylinder along y with the sphere's area
        (x, y, z), d = pts[0], float(diams[0])
        pts, diams = [(x, y - d / 2, z), (x, y + d / 2, z)], [d, d]
    for p, d in zip(pts, diams):
        soma.pt3dadd(float(p[0]), float(p[1]), float(p[2]), float(d))
    soma(0.0001).v = 0
    for s in m.sections:
        sec = hsec[s.id]
        sec.pt3dclear()
        for p, d in zip(s.points, s.diameters):
            sec.pt3dadd(float(p[0]), float(p[1]), float(p[2]), float(d))
        if s.is_root:
            sec.connect(soma(0.5), 0)
        else:
            sec.connect(hsec[s.parent.id](1), 0)
        sec(0.0001).v = s.id + 1
