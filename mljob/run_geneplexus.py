"""run_geneplexus: read a job from the store, run the real GenePlexus pipeline, write status, log and results.

The design notes' names for one run of a job, kept as thin entry points over `mljob.lifecycle.run_job`:

    run_geneplexus(jobname, store, data_path)                       # in Python
    python -m mljob.run_geneplexus JOBNAME JOBS_PATH DATA_PATH      # from a shell (settings from the environment)
"""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mljob.errors import MljobError
from mljob.settings import Settings

if TYPE_CHECKING:  # imported when called: `import mljob` binds this function and must stay cheap
    from mljob.lifecycle import RunPolicy
    from mljob.results_store import ResultsFileStore
    from mljob.status import JobStatus


def run_geneplexus(
    jobname: str,
    store: ResultsFileStore,
    data_path: str | Path,
    *,
    settings: Settings | None = None,
    policy: RunPolicy | None = None,
) -> JobStatus:
    """Run job `jobname` to its end (under its run lease) and return its final status.

    `settings` (default: the documented defaults) give the lease staleness, the data cache budget and
    the callback hosts; `data_path` overrides their DATA_PATH. `policy` (default: no retry) is the
    caller's `RunPolicy`. See `mljob.lifecycle.run_job`.
    """
    from mljob.lifecycle import ONCE, run_job

    settings = dataclasses.replace(settings or Settings(), data_path=Path(data_path))
    return run_job(store, jobname, settings, policy or ONCE)


def main(argv: list[str] | None = None) -> int:
    """`python -m mljob.run_geneplexus JOBNAME JOBS_PATH DATA_PATH`: exit 0 completed, 1 failed, 2 bad usage."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m mljob.run_geneplexus JOBNAME JOBS_PATH DATA_PATH", file=sys.stderr)
        return 2
    from mljob.results_store import ResultsFileStore
    from mljob.status import State

    jobname, jobs_path, data_path = args
    try:
        settings = Settings.from_env(jobs_path=jobs_path, data_path=data_path)
        status = run_geneplexus(jobname, ResultsFileStore.from_settings(settings), data_path, settings=settings)
    except MljobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{jobname}: {status.status.value}: {status.message}")
    return 0 if status.status is State.COMPLETED else 1


class _CallableModule(types.ModuleType):
    """This module, callable as the function of the same name: once `mljob.run_geneplexus` is imported,
    the package attribute of that name is the module, so `from mljob import run_geneplexus` may give either."""

    def __call__(self, *args: Any, **kwargs: Any) -> JobStatus:
        return run_geneplexus(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
