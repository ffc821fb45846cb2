"""``python -m malot`` runs the command line."""

import sys

from malot.cli.app import main

sys.exit(main())
