"""`python -m mintaccel.cli` is the `mintaccel` command."""

import sys

from mintaccel.cli import main

sys.exit(main())
