"""The GenePlexus web app's own API (krishnanlab/geneplexus-app-v2) over the job runner.

- `convert_ids`: POST /api/gpz-convert-ids, GenePlexus's `load_genes` on a gene list, answered at once
  (warm backend-data cache); it creates no job.
- `ml`: POST /api/gpz-ml. The request becomes a job, with the same validation as any job, queued through
  `enqueue.enqueue_jobs`, so it runs through the queue trigger with every guarantee of a queued job; then a cheap
  poll of its status.json, up to WEB_WAIT_SECONDS. 200 with the reference's body built from the job's result files;
  the status code and reason of a job that did not complete; 202 while it still runs.

Each returns (status, body, headers); `encoded` makes the JSON bytes (gzip when accepted). Errors are
`{"message": ...}`, as the web app's old backend sent them. No NaN or Infinity reaches JSON (null instead);
numbers are numbers, IDs are strings.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import gzip
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mljob.api import answering, error_answer, parse_body
from mljob.enqueue import enqueue_jobs
from mljob.errors import InvalidInput, ServiceUnavailable, TooManyWaiting
from mljob.job import SPECIES, json_type, parse_genes
from mljob.job_folders import validate_job, write_job
from mljob.network_layout import finite
from mljob.queue import JobQueue
from mljob.result_files import INPUT_GENES_FILE, MODEL
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import State

log = logging.getLogger(__name__)

WebAnswer = tuple[int, dict[str, Any], dict[str, str]]
CONVERT_KEYS = frozenset({"genes", "sp_trn"})
ML_KEYS = frozenset({"name", "genes", "negatives", "sp_trn", "sp_res", "net_type", "gsc"})
POLL_SECONDS = (0.1, 0.5)  # first and longest pause between two reads of status.json
RETRY_AFTER_SECONDS = 10
GZIP_MIN_BYTES = 1024

# Columns of the result tables that are numbers (the rest are text: IDs, symbols, names, labels).
_INTEGERS = frozenset({"Rank"})
_FLOATS = frozenset({"Probability", "Z-score", "P-adjusted", "Similarity", "Weight"})

_waiting = 0
_waiting_lock = threading.Lock()


# --- errors ----------------------------------------------------------------------------------------------


def refused(exc: Exception, jobname: str | None = None) -> WebAnswer:
    """An error as the web app's old backend answered it: its HTTP status and {"message": ...} (`api.error_answer`
    for an anonymous caller: a misconfiguration in general words), with the job's name when one was created."""
    status, body = error_answer(exc, anonymous=True)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if isinstance(exc, ServiceUnavailable) else {}
    message = {"message": body["error"]}
    return status, ({**message, "jobname": jobname} if jobname else message), headers


# --- gpz-convert-ids ------------------------------------------------------------------------------


@answering(refused)
def convert_ids(body: bytes, settings: Settings) -> WebAnswer:
    """POST /api/gpz-convert-ids: `{"genes", "sp_trn"}` -> the outputs of GenePlexus's load_genes."""
    request = _request(body, settings, CONVERT_KEYS, "genes and sp_trn")
    species = request.get("sp_trn")
    if species not in SPECIES:
        raise InvalidInput(f"sp_trn: {species!r} is not allowed; allowed: {', '.join(SPECIES)}")
    genes = _genes(request.get("genes"), "genes", settings)
    return 200, load_genes(genes, species, settings), {}


def load_genes(genes: list[str], species: str, settings: Settings) -> dict[str, Any]:
    """GenePlexus 3.0.1's load_genes for `species` (see `mljob.science.convert_ids`), done in a job process
    (`mljob.supervisor.convert_ids`): this process never imports the ML stack."""
    from mljob import supervisor

    return supervisor.convert_ids(genes, species, settings)


# --- gpz-ml -------------------------------------------------------------------------------------------


@answering(refused)
async def ml(body: bytes, settings: Settings) -> WebAnswer:
    """POST /api/gpz-ml: create and queue the job, wait for it up to WEB_WAIT_SECONDS, answer its results. An
    error answer names the job once it exists, and only then."""
    store = ResultsFileStore.from_settings(settings)
    request = parse_ml_request(body, settings)
    job = await asyncio.to_thread(validate_job, store, **request)  # a bad request is refused before it waits
    with _waiting_slot(settings.web_max_waiting):
        jobname = await asyncio.to_thread(write_job, store, job)
        naming_the_job = answering(functools.partial(refused, jobname=jobname))
        return await naming_the_job(_queue_and_wait)(store, jobname, settings)


async def _queue_and_wait(store: ResultsFileStore, jobname: str, settings: Settings) -> WebAnswer:
    """Queue a created job and answer it: 200 with its results, its status code and reason when it ended
    otherwise, 202 while it still runs after WEB_WAIT_SECONDS."""
    await asyncio.to_thread(_queue, store, jobname, settings)
    state = await _wait(store, jobname, settings.web_wait_seconds)
    if state is None:
        url = status_url(jobname)
        return 202, {"jobname": jobname, "status_url": url}, {"Location": url}
    status = store.read_status(jobname)
    if status.status is not State.COMPLETED:
        return status.code, {"message": status.message, "jobname": jobname}, {}
    answer = await asyncio.to_thread(ml_response, store, jobname)
    return 200, answer, {"Location": status_url(jobname)}


def parse_ml_request(body: bytes, settings: Settings) -> dict[str, Any]:
    """The job a gpz-ml request asks for, as the arguments of `validate_job`, which checks it like any job's:
    name -> prefix, gsc -> gsc_trn = gsc_res, sp_res one species, features SixSpeciesN2V; negatives when the list
    is non-empty. Only the request's own shape is checked here."""
    request = _request(body, settings, ML_KEYS, ", ".join(sorted(ML_KEYS)))
    name = request.get("name", "")
    if not isinstance(name, str):
        raise InvalidInput(f"name must be a string, got a {json_type(name)}")
    gsc = request.get("gsc")
    params = {
        "net_type": request.get("net_type"),
        "features": "SixSpeciesN2V",
        "sp_trn": request.get("sp_trn"),
        "sp_res": [request.get("sp_res")],
        "gsc_trn": gsc,
        "gsc_res": [gsc],
    }
    genes = _gene_ids(request.get("genes"), "genes")
    negatives = _gene_ids(request.get("negatives") or [], "negatives") or None
    return {"genes": genes, "params": params, "prefix": name, "negatives": negatives}


def status_url(jobname: str) -> str:
    """Where a job's status is read (GET, with the function key)."""
    return f"/api/jobs/{jobname}"


def _queue(store: ResultsFileStore, jobname: str, settings: Settings) -> None:
    enqueue_jobs(store, JobQueue.from_settings(settings), [jobname])
    log.info("gpz-ml: job %s queued", jobname)


async def _wait(store: ResultsFileStore, jobname: str, seconds: float) -> State | None:
    """The job's final state, or None when it has not ended within `seconds` (status.json read a few times a second)."""
    deadline = time.monotonic() + seconds
    pause = POLL_SECONDS[0]
    while True:
        status = store.read_status(jobname)
        if status.is_final:
            return status.status
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, POLL_SECONDS[1])


def ml_response(store: ResultsFileStore, jobname: str) -> dict[str, Any]:
    """The reference's gpz-ml body, from a completed job's result files (plus `jobname`)."""
    info = store.read_job_info(jobname)
    key = info["results"][0]
    model = store.read_result_json(jobname, f"{MODEL}/model_level_config.json")
    inputs = store.read_result_json(jobname, INPUT_GENES_FILE)
    net_type = info["parameters"]["net_type"]
    column = f"In {net_type}?"
    network = next((row for row in inputs["table_summary"] if row.get("Network") == net_type), {})
    folder = f"{MODEL}/{key}"
    return {
        "avgps": [finite(v) for v in model.get("avgps") or []],
        "df_probs": sorted(_table(store, jobname, f"{folder}/df_probs.tsv"), key=lambda row: row["Rank"]),
        "df_sim": sorted(_table(store, jobname, f"{folder}/df_sim.tsv"), key=lambda row: row["Rank"]),
        "df_edge": _table(store, jobname, f"{folder}/df_edge.tsv"),
        "df_edge_sym": _table(store, jobname, f"{folder}/df_edge_sym.tsv"),
        "isolated_genes": _lines(store, jobname, f"{folder}/isolated_genes.txt"),
        "isolated_genes_sym": _lines(store, jobname, f"{folder}/isolated_genes_sym.txt"),
        "df_convert_out_subset": [
            {"Original ID": row["Original ID"], "Entrez ID": row["Entrez ID"], column: row.get(column)}
            for row in inputs["df_convert_out"]
        ],
        "positive_genes": network.get("PositiveGenes"),
        "neutral_gene_info": model.get("neutral_gene_info") or {},
        "jobname": jobname,
    }


@contextmanager
def _waiting_slot(limit: int) -> Iterator[None]:
    """One of the WEB_MAX_WAITING places of this instance; TooManyWaiting when none is free (nothing created)."""
    global _waiting
    with _waiting_lock:
        if _waiting >= limit:
            raise TooManyWaiting(
                f"{limit} analyses are running for other users on this server; try again in {RETRY_AFTER_SECONDS} s"
            )
        _waiting += 1
    try:
        yield
    finally:
        with _waiting_lock:
            _waiting -= 1


# --- requests, tables, answers ---------------------------------------------------------------------------


def _request(body: bytes, settings: Settings, keys: frozenset[str], expected: str) -> dict[str, Any]:
    """The JSON object of a web app request (`api.parse_body`): at most MAX_INPUT_BYTES, only `keys`."""
    return parse_body(body, expected=f"a JSON object with {expected}", most_bytes=settings.max_input_bytes, keys=keys)


def _genes(value: Any, field: str, settings: Settings) -> list[str]:
    """A list of gene IDs, checked like a job's gene file (MAX_INPUT_GENES, MAX_INPUT_BYTES, ...)."""
    what = "negative genes" if field == "negatives" else "input genes"
    return parse_genes(
        "\n".join(_gene_ids(value, field)),
        max_genes=settings.max_input_genes,
        max_bytes=settings.max_input_bytes,
        what=what,
    )


def _gene_ids(value: Any, field: str) -> list[str]:
    """`value` if it is a list of strings (gene IDs, not yet checked as genes)."""
    if not isinstance(value, list) or not all(isinstance(gene, str) for gene in value):
        raise InvalidInput(f"{field} must be a list of gene IDs (strings)")
    return value


def _table(store: ResultsFileStore, jobname: str, relpath: str) -> list[dict[str, Any]]:
    """A GenePlexus TSV as JSON rows: Rank an integer, scores numbers (null for NaN), the rest text."""
    with store.result_path(jobname, relpath).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row in rows:
        for column, value in row.items():
            if column in _INTEGERS:
                row[column] = int(float(value))
            elif column in _FLOATS:
                row[column] = finite(value)
    return rows


def _lines(store: ResultsFileStore, jobname: str, relpath: str) -> list[str]:
    text = store.result_path(jobname, relpath).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def encoded(answer: WebAnswer, accept_encoding: str) -> tuple[int, bytes, dict[str, str]]:
    """The answer as JSON bytes with its headers; gzip-compressed when the client accepts gzip."""
    status, body, headers = answer
    data = json.dumps(body, allow_nan=False, separators=(",", ":")).encode("utf-8")
    headers = {**headers, "Vary": "Accept-Encoding"}
    if len(data) >= GZIP_MIN_BYTES and _accepts_gzip(accept_encoding):
        data = gzip.compress(data, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    return status, data, headers


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (by name or *, with a q above 0)."""
    weights = {}
    for part in (accept_encoding or "").lower().split(","):
        coding, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                q = finite(value) or 0.0
        if coding:
            weights[coding] = q
    return weights.get("gzip", weights.get("*", 0.0)) > 0
