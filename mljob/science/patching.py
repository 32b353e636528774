"""Run-time replacement of GenePlexus internals, shared by the data cache and the fast path.

`SharedPatch` puts replacements in while any job holds them (jobs overlap in threads of one process) and
takes them out after the last one; `VersionPin` turns a replacement off, with one warning, for any
geneplexus but the version whose internals it replaces (SUPPORTED_GENEPLEXUS).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SUPPORTED_GENEPLEXUS = "3.0.1"


class SharedPatch:
    """Replacements of GenePlexus internals, in place while any `held()` block runs. Blocks overlap (jobs in
    threads of one process): the first one in calls `install`, the last one out calls `uninstall`."""

    def __init__(self, install: Callable[[], None], uninstall: Callable[[], None]) -> None:
        self._install, self._uninstall = install, uninstall
        self.lock = threading.Lock()  # held while the replacements go in or out
        self.holders = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        with self.lock:
            if self.holders == 0:
                self._install()
            self.holders += 1
        try:
            yield
        finally:
            with self.lock:
                self.holders -= 1
                if self.holders == 0:
                    self._uninstall()


class VersionPin:
    """Called, True when the installed geneplexus is SUPPORTED_GENEPLEXUS, the version whose internals are
    replaced; any other version turns `what` off, with one warning (`warned` says it was given)."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what, self.logger, self.warned = what, logger, False

    def __call__(self) -> bool:
        try:
            import geneplexus
        except ImportError:  # pragma: no cover - geneplexus is a dependency
            return False
        version = getattr(geneplexus, "__version__", None)
        if version == SUPPORTED_GENEPLEXUS:
            return True
        if not self.warned:
            self.warned = True
            self.logger.warning(
                "%s off: it supports geneplexus %s only, and geneplexus %s is installed",
                self.what,
                SUPPORTED_GENEPLEXUS,
                version,
            )
        return False
