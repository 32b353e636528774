"""Opening GenePlexus: the one place a `GenePlexus` object is made, for a job's pipeline and for convert-ids.

Inside `open_geneplexus` the object reads its backend data through the warm data cache (DATA_CACHE_MB), runs
GenePlexus 3.0.1's slow steps as the fast path's equivalents (FAST_PATH), never downloads, and leaves
geneplexus.config's module-level defaults as it found them, whatever GenePlexus does to them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mljob.science import data_cache, fast_path

log = logging.getLogger(__name__)

# geneplexus.config globals that GenePlexus calls mutate; restored after every job.
_MUTABLE_DEFAULTS = ("ALL_SPECIES", "DEFAULT_LOGREG_KWARGS", "DEFAULT_LOUVAIN_KWARGS", "DEFAULT_DOMINO_KWARGS")


@dataclass(frozen=True)
class Opened:
    """A GenePlexus object and whether the fast path runs its slow steps."""

    gp: Any
    fast_path: bool


@contextmanager
def open_geneplexus(data_path: Path | str, params: dict[str, Any], *, cache_mb: int, fast: bool) -> Iterator[Opened]:
    """`GenePlexus(file_loc=data_path, **params)` with the warm cache (`cache_mb`; 0: off), the fast path
    (`fast`) and geneplexus.config guarded, while the block runs."""
    from geneplexus import GenePlexus  # heavy (~2 s): imported only when GenePlexus is opened

    with guarded_geneplexus_defaults(), data_cache.active(cache_mb), fast_path.active(fast) as fast_on:
        gp = GenePlexus(file_loc=str(data_path), **params, auto_download=False, log_level="WARNING")
        yield Opened(gp, fast_on)


def import_stack() -> None:
    """Import GenePlexus and the ML stack under it (a job process does this once, before its first request)."""
    import geneplexus  # noqa: F401


@contextmanager
def guarded_geneplexus_defaults() -> Iterator[None]:
    """Put back geneplexus.config's module-level defaults after a job, whatever GenePlexus did to them."""
    from geneplexus._config import config as gp_config

    saved = {name: copy.deepcopy(getattr(gp_config, name)) for name in _MUTABLE_DEFAULTS}
    try:
        yield
    finally:
        for name, value in saved.items():
            current = getattr(gp_config, name)
            if current != value:
                log.warning("geneplexus.config.%s was changed during the job; restored", name)
                if isinstance(current, list):
                    current[:] = value
                else:
                    current.clear()
                    current.update(value)
