"""Entry point run by ``special -mpi -python`` after the launcher re-exec'd into it."""

import sys

from neurodamus.cli import main

if __name__ == "__main__":
    # under special, sys.argv is ['-python', this_file, user args...] or [this_file, args...]
    args = sys.argv[1:]
    while args and (args[0] == "-python" or args[0].endswith("_special_main.py")):
        args = args[1:]
    code = main(args)
    sys.stdout.flush()
    sys.stderr.flush()
    from neuron import h

    h.quit(code) if hasattr(h, "quit") else sys.exit(code)
