"""``python -m physiosync``: the same entry point as the ``physiosync`` command."""

import sys

from physiosync.cli import main

sys.exit(main())
