"""`python -m amc_learning.cli`: how the main job starts its worker processes."""

import sys

from amc_learning.cli import main

sys.exit(main())
