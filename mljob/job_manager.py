"""JobManager: links an app with a launcher: creates jobs in the store, launches them, answers status and results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mljob.errors import JobNotReady
from mljob.job import JobConfig, new_jobname, parse_config, parse_genes, validate_jobname
from mljob.launcher import Launcher
from mljob.result_files import TOP_GENES_FILE
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import JobStatus, State


class JobManager:
    """The app's one handle on jobs: `submit`, `launch`, `status`, `top_genes`."""

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
        """Validate genes and parameters, create the job folder, launch it (unless told not to); return its name."""
        jobname = validate_jobname(name) if name else new_jobname(prefix)
        config = parse_config({**dict(params or {}), "jobname": jobname})
        gene_list = self._genes(genes, "input genes")
        negative_list = self._genes(negatives, "negative genes") if negatives is not None else None
        self.store.create_job(config, gene_list, negative_list, replace=replace)
        if launch:
            self.launch(jobname)
        return jobname

    def _genes(self, genes: str | bytes | Iterable[str], what: str) -> list[str]:
        data = genes if isinstance(genes, (str, bytes)) else "\n".join(genes)
        return parse_genes(data, max_genes=self.store.max_genes, max_bytes=self.store.max_bytes, what=what)

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

    def top_genes(self, jobname: str) -> dict[str, list[dict[str, Any]]]:
        """The top predicted genes per result ('Human-Combined', ...) of a completed job."""
        status = self.status(jobname)
        if status.status is not State.COMPLETED:
            raise JobNotReady(f"job {jobname} has no results: it is {status.status.value}")
        return self.store.read_result_json(jobname, TOP_GENES_FILE)["results"]
