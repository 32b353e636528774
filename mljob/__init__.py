"""mljob: run GenePlexus jobs from job folders, locally or from an Azure Storage Queue.

The public API, importable from here (each name is loaded on first use, so that `import mljob` stays
cheap for the function app's cold start):

    from mljob import ResultsFileStore, JobManager, LocalLauncher, Settings

The errors only the dev tools raise (`mljob share`, `mljob serve`, the command line's usage errors) stay in
`mljob.errors`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_HOMES = {
    "run_geneplexus": "mljob.run_geneplexus",  # the function; its module is callable too (see there)
    "ResultsFileStore": "mljob.results_store",
    "JobManager": "mljob.job_manager",
    "JobResults": "mljob.job_results",
    "Launcher": "mljob.launcher",
    "LocalLauncher": "mljob.launcher",
    "QueueLauncher": "mljob.launcher",
    "UrlLauncher": "mljob.launcher",
    "JobQueue": "mljob.queue",
    "RunPolicy": "mljob.lifecycle",
    "Settings": "mljob.settings",
    "JobConfig": "mljob.job",
    "JobStatus": "mljob.status",
    "State": "mljob.status",
    "MljobError": "mljob.errors",
    "InvalidInput": "mljob.errors",
    "PathEscape": "mljob.errors",
    "SettingsError": "mljob.errors",
    "HostJsonError": "mljob.errors",
    "JobNotFound": "mljob.errors",
    "JobExists": "mljob.errors",
    "JobNotReady": "mljob.errors",
    "JobBusy": "mljob.errors",
    "JobFinished": "mljob.errors",
    "JobError": "mljob.errors",
    "RunOutOfMemory": "mljob.errors",
    "RunTimedOut": "mljob.errors",
    "RunCancelled": "mljob.errors",
    "JobProcessDied": "mljob.errors",
    "JobWorkFailed": "mljob.errors",
    "ServiceUnavailable": "mljob.errors",
    "QueueUnavailable": "mljob.errors",
    "LaunchError": "mljob.errors",
    "LegacyJobFolder": "mljob.errors",
    "RequestTooLarge": "mljob.errors",
    "TooManyWaiting": "mljob.errors",
}

__all__ = [*_HOMES, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'mljob' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
