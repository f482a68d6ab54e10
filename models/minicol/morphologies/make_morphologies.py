"""Write the simple SWC morphologies of the minicol example model.

Usage:  python make_morphologies.py [OUT_DIR]      (default: this folder)

Also importable: ``write_pyramidal(path, seed)`` and ``write_basket(path, seed)``
give one morphology each; ``seed`` jitters branch angles and lengths a little
(seed 0 gives the reference shape).  Units are um.  SWC types: 1 soma (one point:
a sphere of the given radius), 2 axon, 3 basal dendrite, 4 apical dendrite.
"""

import math
import os
import sys

import numpy as np

SOMA, AXON, BASAL, APICAL = 1, 2, 3, 4


class _Swc:
    """Collects SWC rows; every neurite is a tree of straight cylinders."""

    def __init__(self):
        self.rows = []

    def add(self, kind, xyz, radius, parent):
        self.rows.append((len(self.rows) + 1, kind, *xyz, radius, parent))
        return len(self.rows)

    def soma(self, radius):
        return self.add(SOMA, (0.0, 0.0, 0.0), radius, -1)

    def branch(self, kind, parent, start, direction, length, diam, step=10.0):
        """A straight unbranched piece; returns (last row id, end point)."""
        d = np.asarray(direction, float)
        d /= np.linalg.norm(d)
        n = max(1, int(math.ceil(length / step)))
        pid = parent
        for k in range(1, n + 1):
            p = np.asarray(start, float) + d * length * k / n
            pid = self.add(kind, p, diam / 2.0, pid)
        return pid, np.asarray(start, float) + d * length

    def write(self, path, header):
        with open(path, "w") as f:
            f.write("# " + header + "\n")
            for i, t, x, y, z, r, p in self.rows:
                f.write(f"{i} {t} {x:.3f} {y:.3f} {z:.3f} {r:.3f} {p}\n")


def _unit(angle_deg, elevation_deg=0.0):
    a, e = math.radians(angle_deg), math.radians(elevation_deg)
    return (math.cos(e) * math.cos(a), math.sin(e), math.cos(e) * math.sin(a))


def write_pyramidal(path, seed=0):
    """Pyramidal cell: soma r=12, 4 basal trees, apical trunk with 2 obliques
    and a 2-branch tuft, axon with 2 collaterals."""
    rng = np.random.default_rng(seed)
    jit = (lambda s: rng.uniform(-s, s)) if seed else (lambda s: 0.0)
    swc = _Swc()
    soma_r = 12.0
    root = swc.soma(soma_r)
    # axon (down)
    a0, end = swc.branch(AXON, root, (0, -soma_r, 0), (0, -1, 0), 400 + jit(40), 1.0)
    for ang in (60, 240):
        d = _unit(ang + jit(20))
        swc.branch(AXON, a0, end, (d[0], -1.5, d[2]), 250 + jit(30), 0.6)
    # basal trees
    for k in range(4):
        ang = 90 * k + 45 + jit(15)
        d = _unit(ang, -20 + jit(10))
        start = np.array(d) * soma_r
        b0, end = swc.branch(BASAL, root, start, d, 60 + jit(10), 1.5)
        for s in (-25, 25):
            swc.branch(BASAL, b0, end, _unit(ang + s + jit(10), -30 + jit(10)), 140 + jit(20), 0.9)
    # apical trunk with two obliques, then the tuft
    t0, p0 = swc.branch(APICAL, root, (0, soma_r, 0), (0, 1, 0), 120 + jit(10), 3.0)
    swc.branch(APICAL, t0, p0, _unit(30 + jit(20), 40), 120 + jit(20), 1.0)
    t1, p1 = swc.branch(APICAL, t0, p0, (0, 1, 0), 200 + jit(20), 2.2)
    swc.branch(APICAL, t1, p1, _unit(210 + jit(20), 40), 120 + jit(20), 1.0)
    t2, p2 = swc.branch(APICAL, t1, p1, (0, 1, 0), 200 + jit(20), 1.6)
    for ang in (0, 180):
        swc.branch(APICAL, t2, p2, _unit(ang + jit(20), 55), 180 + jit(20), 1.0)
    swc.write(path, f"minicol pyramidal cell, seed {seed}")


def write_basket(path, seed=0):
    """Basket interneuron: soma r=8.5, 5 dendritic trees, branched axon."""
    rng = np.random.default_rng(seed)
    jit = (lambda s: rng.uniform(-s, s)) if seed else (lambda s: 0.0)
    swc = _Swc()
    soma_r = 8.5
    root = swc.soma(soma_r)
    a0, end = swc.branch(AXON, root, (0, -soma_r, 0), (0, -1, 0), 150 + jit(20), 0.8)
    for ang in (0, 120, 240):
        d = _unit(ang + jit(20))
        swc.branch(AXON, a0, end, (d[0], -0.3, d[2]), 200 + jit(30), 0.5)
    for k in range(5):
        ang = 72 * k + jit(15)
        d = _unit(ang, 10 + jit(20))
        b0, end = swc.branch(BASAL, root, np.array(d) * soma_r, d, 50 + jit(10), 1.2)
        for s in (-20, 20):
            swc.branch(BASAL, b0, end, _unit(ang + s + jit(10), jit(20)), 100 + jit(20), 0.7)
    swc.write(path, f"minicol basket interneuron, seed {seed}")


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    write_pyramidal(os.path.join(out_dir, "pyr_0.swc"), 0)
    write_basket(os.path.join(out_dir, "int_0.swc"), 0)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
