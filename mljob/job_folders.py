"""A job folder made and removed by the rules every entry point shares.

`create_job` is the one way a job comes to be (`JobManager.submit`, `mljob submit`, the web app's gpz-ml,
`mljob.tools.share.submit_to_share`): name, parameters and genes validated, then the folder written whole.
`remove_job` is the one way a job goes (`JobManager.cleanup`, `mljob cleanup`, a retention timer): never
while it is queued or running.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mljob.errors import InvalidInput, JobBusy, JobNotReady, PathEscape
from mljob.job import JobConfig, new_jobname, parse_config, parse_genes, validate_jobname
from mljob.lease import RunLease
from mljob.results_store import ResultsFileStore
from mljob.status import State

if TYPE_CHECKING:
    from mljob.settings import Settings

Genes = str | bytes | Iterable[str]
# the states in which a job is not removed, and what to do instead
NOT_REMOVABLE = {
    State.QUEUED: "its queue message would find no job; cancel it first, then remove it",
    State.RUNNING: "cancel it first, or wait until it ends",
}


@dataclass(frozen=True)
class NewJob:
    """A job validated and not yet written: its config (with its name), genes and negatives."""

    config: JobConfig
    genes: list[str]
    negatives: list[str] | None

    @property
    def jobname(self) -> str:
        return self.config.jobname


def validate_job(
    store: ResultsFileStore,
    genes: Genes,
    params: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    prefix: str | None = None,
    negatives: Genes | None = None,
) -> NewJob:
    """Validate the name (`name`, or a new one from `prefix`), the parameters and the genes (the store's
    MAX_INPUT_GENES and MAX_INPUT_BYTES); InvalidInput names what is wrong. Nothing is written."""
    jobname = validate_jobname(name) if name else new_jobname(prefix)
    config = parse_config({**dict(params or {}), "jobname": jobname})
    gene_list = _genes(store, genes, "input genes")
    negative_list = _genes(store, negatives, "negative genes") if negatives is not None else None
    return NewJob(config, gene_list, negative_list)


def write_job(store: ResultsFileStore, job: NewJob, *, replace: bool = False) -> str:
    """Create a validated job's folder, status `created`, whole or not at all; return its name (JobExists when
    the name is taken and not `replace`)."""
    store.create_job(job.config, job.genes, job.negatives, replace=replace)
    return job.jobname


def create_job(
    store: ResultsFileStore,
    genes: Genes,
    params: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    prefix: str | None = None,
    negatives: Genes | None = None,
    replace: bool = False,
) -> str:
    """`validate_job`, then `write_job`: the job folder, status `created`; return its name.

    InvalidInput names what is wrong (nothing is written); JobExists when `name` is taken and not `replace`.
    """
    job = validate_job(store, genes, params, name=name, prefix=prefix, negatives=negatives)
    return write_job(store, job, replace=replace)


def _genes(store: ResultsFileStore, genes: Genes, what: str) -> list[str]:
    data = genes if isinstance(genes, (str, bytes)) else "\n".join(genes)
    return parse_genes(data, max_genes=store.max_genes, max_bytes=store.max_bytes, what=what)


def remove_job(store: ResultsFileStore, jobname: str, settings: Settings) -> None:
    """Remove a job's folder: a created or finished job (completed, failed, timeout, cancelled), or one whose
    status.json cannot be read. It holds the job's run lease meanwhile, so no run starts during the removal.

    JobBusy while a live run holds the lease; JobNotReady for a queued or running job (its status); JobNotFound
    for an unknown job. Nothing is removed then.
    """
    store.require_job(jobname)
    lease = RunLease.from_settings(store, jobname, settings)
    if not lease.acquire():
        raise JobBusy(
            f"job {jobname} is being run ({lease.holder() or 'unknown holder'}); it cannot be removed: "
            f"{NOT_REMOVABLE[State.RUNNING]}"
        )
    try:
        state = _state(store, jobname)
        if state in NOT_REMOVABLE:
            raise JobNotReady(f"job {jobname} is {state.value}; it cannot be removed: {NOT_REMOVABLE[state]}")
        store.delete_job(jobname, confirm=jobname)
    finally:
        lease.release()


def _state(store: ResultsFileStore, jobname: str) -> State | None:
    """The job's state; None when its status.json is missing or unreadable (a link out is refused)."""
    try:
        return store.read_status(jobname).status
    except PathEscape:
        raise
    except InvalidInput:
        return None
