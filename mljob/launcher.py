"""Launchers: the ways a job stored in a ResultsFileStore gets run (here, in this process)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from mljob.results_store import ResultsFileStore
from mljob.status import JobStatus


class Launcher(Protocol):
    """Starts the run of a job whose inputs are already in the store."""

    def launch(self, jobname: str) -> JobStatus | None:
        """Start (or, for in-process launchers, do) the run; returns the final status when known."""
        ...


class LocalLauncher:
    """Runs the job right here, in this process, and returns when it has ended."""

    def __init__(self, store: ResultsFileStore, data_path: str | Path):
        self.store = store
        self.data_path = Path(data_path)

    def launch(self, jobname: str) -> JobStatus:
        """Run the job to its end; returns its final status."""
        from mljob.run_geneplexus import run_geneplexus

        return run_geneplexus(jobname, self.store, self.data_path)
