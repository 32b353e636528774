"""`python -m mljob` is the `mljob` command."""

import sys

from mljob.cli import main

sys.exit(main())
