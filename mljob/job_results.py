"""JobResults: a completed job's results as one handle (the design notes' `get_results`, `JobManager.results`).

It reads through the store (every path checked); its tables come as pandas DataFrames from
`mljob.science.tables`, imported only when a table is asked for, so the handle itself stays cheap.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mljob.errors import InvalidInput, JobNotReady
from mljob.result_files import EDGE_FILE, PROBS_FILE, REPORT_FILE, SIM_FILE, TOP_GENES_FILE, result_folder
from mljob.results_store import RESULTS_DIR, ResultsFileStore
from mljob.status import State

if TYPE_CHECKING:
    from mljob.job import JobConfig
    from mljob.science.tables import DataFrame


class JobResults:
    """A completed job's config, job_info, result keys ("Human-Combined", ...), tables, top genes and files.

    JobNotFound for an unknown job, JobNotReady (saying its state) for one that has not completed.
    `probs`, `similarities` and `edges` take a result key, which may be left out when there is one result.
    """

    def __init__(self, store: ResultsFileStore, jobname: str):
        store.require_job(jobname)
        status = store.read_status(jobname)
        if status.status is not State.COMPLETED:
            said = f" ({status.message})" if status.message else ""
            raise JobNotReady(f"job {jobname} has no results: it is {status.status.value}{said}")
        self.store = store
        self.jobname = jobname
        self.config: JobConfig = store.read_config(jobname)
        self.job_info: dict[str, Any] = store.read_job_info(jobname)
        self.keys: list[str] = list(self.job_info["results"])

    def __repr__(self) -> str:
        return f"JobResults({self.jobname!r}, keys={self.keys!r})"

    # --- tables ---------------------------------------------------------------------------------

    def probs(self, key: str | None = None) -> DataFrame:
        """df_probs.tsv of a result: every gene ranked by its predicted probability."""
        return self._table(key, PROBS_FILE)

    def similarities(self, key: str | None = None) -> DataFrame:
        """df_sim.tsv of a result: the gene-set terms ranked by their similarity to the model."""
        return self._table(key, SIM_FILE)

    def edges(self, key: str | None = None) -> DataFrame:
        """df_edge.tsv of a result: the network among the top genes (Entrez IDs)."""
        return self._table(key, EDGE_FILE)

    def _table(self, key: str | None, filename: str) -> DataFrame:
        from mljob.science.tables import read_table

        return read_table(self.path(f"{result_folder(self._key(key))}/{filename}"))

    def _key(self, key: str | None) -> str:
        if key is None:
            if len(self.keys) == 1:
                return self.keys[0]
            raise InvalidInput(f"job {self.jobname} has {len(self.keys)} results ({', '.join(self.keys)}): name one")
        if key not in self.keys:
            raise InvalidInput(f"job {self.jobname} has no result {key!r}; its results: {', '.join(self.keys)}")
        return key

    @cached_property
    def top_genes(self) -> dict[str, list[dict[str, Any]]]:
        """top_genes.json's top genes per result key: rank, entrez, symbol, name, known, probability, ..."""
        return self.store.read_result_json(self.jobname, TOP_GENES_FILE)["results"]

    # --- files ----------------------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        """The job folder."""
        return self.store.job_path(self.jobname)

    @property
    def results_folder(self) -> Path:
        """The job's results/ folder."""
        return self.folder / RESULTS_DIR

    @property
    def report(self) -> Path:
        """results/report.html, the job's report (self-contained: open it in a browser)."""
        return self.path(REPORT_FILE)

    @property
    def files(self) -> dict[str, Path]:
        """Every file under results/, by its path relative to it ("All-Genes/Human-Combined/df_probs.tsv")."""
        return {relpath: self.path(relpath) for relpath in self.store.list_results(self.jobname)}

    def path(self, relpath: str) -> Path:
        """The path of one file under results/; JobNotFound when there is none (nothing outside is reached)."""
        return self.store.result_path(self.jobname, relpath)
