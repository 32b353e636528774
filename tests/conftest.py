"""Shared pytest fixtures: an isolated home for pystow, synthetic backend data made once."""

from __future__ import annotations

import os
import tempfile

# geneplexus writes $PYSTOW_HOME/README.md on import; keep it out of the user's home.
os.environ.setdefault("PYSTOW_HOME", tempfile.mkdtemp(prefix="mljob-pystow-"))
