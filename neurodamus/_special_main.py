"""Entry point run by ``special -mpi -python`` after the launcher re-exec'd into it."""

import os
import sys

from neurodamus.cli import main


def user_args(argv: list[str]) -> list[str]:
    """The user's arguments: everything after this script's path (nrniv keeps its own flags
    such as -mpi, -nogui and -python in front of it)."""
    here = os.path.basename(__file__)
    for i, arg in enumerate(argv):
        if os.path.basename(arg) == here:
            return argv[i + 1:]
    return argv[1:]


if __name__ == "__main__":
    code = main(user_args(sys.argv))
    sys.stdout.flush()
    sys.stderr.flush()
    # leave through NEURON so that MPI (initialised by special -mpi) is finalised by it
    from neuron import h

    if code == 0:
        h.quit()
    os._exit(code)
