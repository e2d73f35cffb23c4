"""``python -m training_dynamics <command>``: the same as ``training-dynamics <command>``."""

import sys

from training_dynamics.cli import main

sys.exit(main())
