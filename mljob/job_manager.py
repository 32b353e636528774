"""JobManager: links an app with a launcher: creates jobs in the store, launches them, answers status and results,
removes them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mljob.job import JobConfig
from mljob.job_folders import create_job, remove_job
from mljob.job_results import JobResults
from mljob.launcher import Launcher
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import JobStatus


class JobManager:
    """The app's one handle on jobs: `submit`, `launch`, `status`, `cancel`, `results`, `cleanup`."""

    def __init__(self, store: ResultsFileStore, launcher: Launcher, settings: Settings | None = None):
        """`settings` (default: the documented defaults) give cancel its lease staleness and callback hosts."""
        self.store = store
        self.launcher = launcher
        self.settings = settings or Settings()

    def submit(
        self,
        genes: str | bytes | Iterable[str],
        params: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        prefix: str | None = None,
        negatives: str | bytes | Iterable[str] | None = None,
        launch: bool = True,
        replace: bool = False,
    ) -> str:
        """Validate genes and parameters, create the job folder (`mljob.job_folders.create_job`), launch it (unless
        told not to); return its name."""
        jobname = create_job(self.store, genes, params, name=name, prefix=prefix, negatives=negatives, replace=replace)
        if launch:
            self.launch(jobname)
        return jobname

    def launch(self, jobname: str) -> JobStatus | None:
        """Hand an existing job to the launcher."""
        self.store.require_job(jobname)
        return self.launcher.launch(jobname)

    def cancel(self, jobname: str) -> JobStatus:
        """Cancel the job (see `mljob.lifecycle.cancel_job`): `cancelled`, or `running` while its run stops."""
        from mljob.lifecycle import cancel_job

        return cancel_job(self.store, jobname, self.settings)

    def status(self, jobname: str) -> JobStatus:
        """The job's current status."""
        self.store.require_job(jobname)
        return self.store.read_status(jobname)

    def config(self, jobname: str) -> JobConfig:
        """The job's parameters."""
        return self.store.read_config(jobname)

    def results(self, jobname: str) -> JobResults:
        """A completed job's results (tables, top genes, files); JobNotReady, saying its state, until then."""
        return JobResults(self.store, jobname)

    def cleanup(self, jobname: str) -> None:
        """Remove the job's folder (see `mljob.job_folders.remove_job`): never while it is queued or running."""
        remove_job(self.store, jobname, self.settings)
