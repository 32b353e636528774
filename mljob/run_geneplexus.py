"""run_geneplexus: read a job from the store, run the real GenePlexus pipeline, write status, log and results.

GenePlexus, numpy and pandas are imported only when a job runs, so that importing this module stays cheap.
Run one job from a shell: `python -m mljob.run_geneplexus JOBNAME JOBS_PATH DATA_PATH`.
"""

from __future__ import annotations

import copy
import logging
import platform
import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mljob
from mljob import backend_data, cache, callback
from mljob.errors import InvalidInput, JobError, JobNotFound
from mljob.job import JobConfig, validate_jobname
from mljob.report import REPORT_FILE, render_report
from mljob.results import write_web_files
from mljob.results_store import ResultsFileStore, atomic_write
from mljob.status import JobStatus, Progress, State

log = logging.getLogger(__name__)

# Each step of a run and the share of the whole run done when it starts (for status.json's progress).
STEP_PERCENT = {
    "checking inputs": 1,
    "loading genes": 5,
    "loading negatives": 10,
    "clustering": 12,
    "fitting": 20,
    "predicting": 60,
    "similarities": 75,
    "network": 85,
    "saving": 92,
}

# geneplexus.config globals that GenePlexus calls mutate; restored after every job.
_MUTABLE_DEFAULTS = ("ALL_SPECIES", "DEFAULT_LOGREG_KWARGS", "DEFAULT_LOUVAIN_KWARGS", "DEFAULT_DOMINO_KWARGS")


def run_geneplexus(jobname: str, store: ResultsFileStore, data_path: str | Path, *, retry: bool = False) -> JobStatus:
    """Run job `jobname` to its end and return its final status (completed or failed, with a reason).

    Failures a retry cannot fix (bad config or genes, too few genes, missing backend data) end in
    `failed`. So do unexpected errors, unless `retry` is true: then the job goes back to `queued`,
    its message saying which try failed, and the error is re-raised for the queue to redeliver.
    """
    validate_jobname(jobname)
    if not store.exists(jobname):
        raise JobNotFound(f"job {jobname} not found in {store.root}")
    try:
        attempt = store.read_status(jobname).attempt + 1
    except InvalidInput:
        attempt = 1
    with _job_log(store, jobname):
        store.update_status(
            jobname,
            State.RUNNING,
            f"run {attempt} started",
            attempt=attempt,
            progress=Progress(step="starting", percent=0),
        )
        log.info("job %s: run %d started (mljob %s)", jobname, attempt, mljob.__version__)
        try:
            summary = _run(jobname, store, Path(data_path))
        except (JobError, InvalidInput) as exc:
            log.error("job %s failed: %s", jobname, exc)
            final = store.update_status(jobname, State.FAILED, str(exc))
        except Exception as exc:
            log.exception("job %s: run %d failed with an unexpected error", jobname, attempt)
            reason = f"unexpected error ({type(exc).__name__}: {exc}); details are in job.log"
            if retry:
                store.update_status(jobname, State.QUEUED, f"try {attempt} failed: {reason}; it will be retried")
                raise
            final = store.update_status(jobname, State.FAILED, reason)
        else:
            final = store.update_status(jobname, State.COMPLETED, summary, progress=Progress(step="done", percent=100))
            log.info("job %s completed: %s", jobname, summary)
        callback.notify(store, final)
    return final


class _Steps:
    """Times each step of a run and reports it as progress in status.json."""

    def __init__(self, store: ResultsFileStore, jobname: str):
        self.store, self.jobname = store, jobname
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.store.update_status(
            self.jobname, State.RUNNING, name, progress=Progress(step=name, percent=STEP_PERCENT[name])
        )
        log.info("job %s: %s", self.jobname, name)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 4)


def _run(jobname: str, store: ResultsFileStore, data_path: Path) -> str:
    """The pipeline; returns a one-line summary for the completed status."""
    steps = _Steps(store, jobname)
    started = time.time()
    with steps.step("checking inputs"):
        config = store.read_config(jobname)
        genes = store.read_genes(jobname)
        negatives = store.read_negatives(jobname)
        store.discard_results(jobname)
        required = _check_backend_data(config, data_path)

    from geneplexus import GenePlexus  # heavy (~2 s): imported only when a job runs
    from geneplexus.exception import NoPositivesError

    with _guarded_geneplexus_defaults(), cache.active():  # warm backend data, DATA_CACHE_MB (0 = off)
        gp = GenePlexus(file_loc=str(data_path), **config.geneplexus_init(), auto_download=False, log_level="WARNING")
        with steps.step("loading genes"):
            gp.load_genes(list(genes))
        _check_enough_genes(gp, config, len(genes))
        if negatives:
            with steps.step("loading negatives"):
                gp.load_negatives(list(negatives))
        if config.clust_method:
            with steps.step("clustering"):
                gp.cluster_input(
                    clust_method=config.clust_method, clust_min_size=config.clust_min_size, clust_kwargs={}
                )
        with steps.step("fitting"):
            try:
                gp.fit(
                    logreg_kwargs={},
                    min_num_pos=config.min_num_pos,
                    min_num_pos_cv=config.min_num_pos_cv,
                    num_folds=config.num_folds,
                    random_state=config.random_state,
                    cross_validate=config.cross_validate,
                )
            except NoPositivesError as exc:
                raise JobError(
                    f"too few of your genes are in the {config.net_type} network to train a model: {exc}"
                ) from None
        with steps.step("predicting"):
            gp.predict()
        with steps.step("similarities"):
            gp.make_sim_dfs()
        with steps.step("network"):
            gp.make_small_edgelist(num_nodes=config.num_nodes)
        with steps.step("saving"), store.staging_results(jobname) as staging:
            _save_class(gp, staging)
            write_web_files(gp, staging, top=config.num_nodes)
            info = _job_info(gp, config, genes, negatives, data_path, required, steps.seconds, started)
            atomic_write(staging / REPORT_FILE, render_report(info["parameters"], info, staging))
        info["total_seconds"] = round(time.time() - started, 3)
        info["result_files"] = store.list_results(jobname)
        store.write_job_info(jobname, info)
    model = gp.model_info["All-Genes"]
    avgps = info["avgps_mean"]
    cv = f", cross-validation log2(auPRC/prior) {avgps:.2f}" if avgps is not None else ""
    return (
        f"{len(model.pos_genes_in_net)} of your {len(genes)} genes were used to train the model{cv}; "
        f"results in results/"
    )


def _save_class(gp: Any, folder: Path) -> None:
    """gp.save_class(folder, "all"), working around GenePlexus 3.0.1 failing to save after load_negatives.

    save_class puts every DataFrame-free attribute into top_level_config.json but forgets
    df_convert_out_negatives (a TypeError); it is set aside and written as its own TSV instead.
    """
    negatives_table = gp.__dict__.pop("df_convert_out_negatives", None)
    try:
        gp.save_class(str(folder), save_type="all", zip_output=False, overwrite=False)
    finally:
        if negatives_table is not None:
            gp.df_convert_out_negatives = negatives_table
    if negatives_table is not None:
        negatives_table.to_csv(folder / "df_convert_out_negatives.tsv", sep="\t", index=False)


def _check_backend_data(config: JobConfig, data_path: Path) -> list[str]:
    """The backend files this job reads; JobError naming the missing ones (nothing is downloaded)."""
    params = dict(
        net_type=config.net_type,
        features=config.features,
        sp_trn=config.sp_trn,
        sp_res=config.sp_res,
        gsc_trn=config.gsc_trn,
        gsc_res=config.gsc_res,
        clustering=config.clust_method is not None,
    )
    if not data_path.is_dir():
        raise JobError(f"the GenePlexus backend data folder {data_path} does not exist")
    missing = backend_data.missing_files(data_path, **params)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise JobError(
            f"GenePlexus backend data for {config.sp_trn}/{config.net_type} is missing from "
            f"{data_path}: {shown}; download it (scripts/download_data_for_geneplexus.py) "
            "before running the job"
        )
    return backend_data.required_files(**params)


def _check_enough_genes(gp: Any, config: JobConfig, given: int) -> None:
    """JobError in words when too few input genes are in the training network."""
    table = gp.df_convert_out
    column = f"In {config.net_type}?"
    in_net = table.loc[table[column] == "Y", "Entrez ID"].nunique() if column in table else 0
    found = gp.input_count
    if in_net < config.min_num_pos:
        raise JobError(
            f"too few of your genes are in the {config.net_type} network for {config.sp_trn}: "
            f"{in_net} of your {given} genes were found in it ({found} recognised as {config.sp_trn} genes at all), "
            f"and at least {config.min_num_pos} are needed to train a model (min_num_pos). "
            f"Check that the genes are {config.sp_trn} gene symbols, Entrez or Ensembl IDs."
        )


def _job_info(
    gp: Any,
    config: JobConfig,
    genes: list[str],
    negatives: list[str] | None,
    data_path: Path,
    required: list[str],
    seconds: dict[str, float],
    started: float,
) -> dict[str, Any]:
    """The manifest written to job_info.json."""
    import geneplexus
    import numpy
    import sklearn

    model = gp.model_info["All-Genes"]
    scores = [float(x) for x in (model.avgps or []) if x is not None]  # None per fold when CV was skipped
    return {
        "jobname": config.jobname,
        "parameters": config.model_dump(mode="json"),
        "versions": {
            "mljob": mljob.__version__,
            "geneplexus": geneplexus.__version__,
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "data_path": str(data_path),
        "backend_files": [{"name": name, "bytes": (data_path / name).stat().st_size} for name in required],
        "seconds": seconds,
        "total_seconds": round(time.time() - started, 3),
        "peak_memory_mb": round(peak_rss_mb(), 1),
        "avgps": scores or None,
        "avgps_mean": sum(scores) / len(scores) if scores else None,
        "input_count": len(genes),
        "converted_count": int(gp.input_count),
        "negatives_count": len(negatives or []),
        "positive_genes": {
            "in_network": len(model.pos_genes_in_net),
            "not_in_network": len(model.genes_not_in_net),
            "negatives_used": len(model.negative_genes),
        },
        "network_summary": [
            {k: (int(v) if isinstance(v, numpy.integer) else v) for k, v in row.items()} for row in gp.table_summary
        ],
        "models": list(gp.model_info),
        "results": list(model.results),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB.

    On Linux VmHWM from /proc/self/status, not ru_maxrss: that one is carried over from the parent
    across fork + exec, so a worker started by a big process would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # not Linux
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # macOS: bytes
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


@contextmanager
def _guarded_geneplexus_defaults() -> Iterator[None]:
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


class _ThisThread(logging.Filter):
    """Lets through only records from the thread running this job (jobs may share a process)."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread


@contextmanager
def _job_log(store: ResultsFileStore, jobname: str) -> Iterator[None]:
    """Send this thread's log lines (mljob's, geneplexus's, ...) to the job's job.log while it runs.

    The handler sits on the root logger: GenePlexus resets the level of every stream handler on its
    own logger (file handlers included), so a handler there would lose its INFO lines.
    """
    handler = store.log_handler(jobname)
    handler.addFilter(_ThisThread())
    mljob_logger = logging.getLogger("mljob")
    if mljob_logger.level == logging.NOTSET:
        mljob_logger.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m mljob.run_geneplexus JOBNAME JOBS_PATH DATA_PATH`: exit 0 completed, 1 failed, 2 bad usage."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m mljob.run_geneplexus JOBNAME JOBS_PATH DATA_PATH", file=sys.stderr)
        return 2
    jobname, jobs_path, data_path = args
    try:
        status = run_geneplexus(validate_jobname(jobname), ResultsFileStore(jobs_path), data_path)
    except (InvalidInput, JobNotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{jobname}: {status.status.value}: {status.message}")
    return 0 if status.status is State.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
