"""The NEURON-free sub-commands (compare, doctor, plot) behave as shell tools."""

import subprocess
import sys

from tests.helpers import ROOT

TOOL = """
import sys
from neurodamus import cli
def main(args):
    for i in range(200000):
        print("line", i)
    return 0
sys.exit(cli._tool("x", "Usage:\\n    neurodamus x", main, ValueError, []))
"""


def test_a_reader_that_leaves_early_gets_no_traceback():
    # `neurodamus compare a b | head -1`
    proc = subprocess.Popen([sys.executable, "-c", TOOL], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"line 0\n"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err
