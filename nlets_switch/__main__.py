"""``python -m nlets_switch`` runs the command line."""

import sys

from nlets_switch.cli import main

sys.exit(main())
