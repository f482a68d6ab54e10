"""``python -m neurodamus`` is the ``neurodamus`` command."""

import sys

from neurodamus.cli import main

sys.exit(main())
