"""`python -m pytest_hybridjudge.cli`: the `hybridjudge` command."""

import sys

from . import main

sys.exit(main())
