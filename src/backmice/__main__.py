"""``python -m backmice``: the command line."""

import sys

from backmice.cli import main

sys.exit(main())
