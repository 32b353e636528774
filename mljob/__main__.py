"""`python -m mljob` is the `mljob` command."""

import sys

from mljob.tools.cli import main

sys.exit(main())
