"""The GenePlexus web app's own API (krishnanlab/geneplexus-app-v2) over the job runner.

- `convert_ids`: POST /api/gpz-convert-ids, GenePlexus's `load_genes` on a gene list, answered at once
  (warm backend-data cache); it creates no job.
- `ml`: POST /api/gpz-ml. The request becomes a job, with the same validation as any job, queued through
  the job service, so it runs on the queue workers with every guarantee they have; then a cheap poll of its
  status.json, up to WEB_WAIT_SECONDS. 200 with the reference's body built from the job's result files;
  the status code and reason of a job that did not complete; 202 while it still runs.

Each returns (status, body, headers); `encoded` makes the JSON bytes (gzip when accepted). Errors are
`{"message": ...}`, as the web app's old backend sent them. No NaN or Infinity reaches JSON (null instead);
numbers are numbers, IDs are strings.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mljob.api import error_answer
from mljob.enqueue import enqueue_jobs
from mljob.errors import InvalidInput, RequestTooLarge, ServiceUnavailable, TooManyWaiting
from mljob.job import SPECIES, JobConfig, json_type, new_jobname, parse_config, parse_genes
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


# --- gpz-convert-ids ------------------------------------------------------------------------------


def convert_ids(body: bytes, settings: Settings) -> WebAnswer:
    """POST /api/gpz-convert-ids: `{"genes", "sp_trn"}` -> the outputs of GenePlexus's load_genes."""
    try:
        request = _request(body, settings, CONVERT_KEYS, "genes and sp_trn")
        species = request.get("sp_trn")
        if species not in SPECIES:
            raise InvalidInput(f"sp_trn: {species!r} is not allowed; allowed: {', '.join(SPECIES)}")
        genes = _genes(request.get("genes"), "genes", settings)
        return 200, load_genes(genes, species, settings), {}
    except Exception as exc:  # every error becomes a JSON answer
        return _refused(exc)


def load_genes(genes: list[str], species: str, settings: Settings) -> dict[str, Any]:
    """GenePlexus 3.0.1's load_genes for `species` (see `mljob.science.convert_ids`)."""
    from mljob.science.convert_ids import convert_ids as compute

    data_path = settings.require_data_path()
    return compute(genes, species, data_path, cache_mb=settings.data_cache_mb, fast=bool(settings.fast_path))


# --- gpz-ml -------------------------------------------------------------------------------------------


async def ml(body: bytes, settings: Settings) -> WebAnswer:
    """POST /api/gpz-ml: create and queue the job, wait for it up to WEB_WAIT_SECONDS, answer its results."""
    jobname = None
    try:
        config, genes, negatives = parse_ml_request(body, settings)
        jobname = config.jobname
        with _waiting_slot(settings.web_max_waiting):
            store = ResultsFileStore.from_settings(settings)
            await asyncio.to_thread(_create_and_queue, store, config, genes, negatives, settings)
            state = await _wait(store, jobname, settings.web_wait_seconds)
            if state is None:
                url = status_url(jobname)
                return 202, {"jobname": jobname, "status_url": url}, {"Location": url}
            status = store.read_status(jobname)
            if status.status is not State.COMPLETED:
                return status.code, {"message": status.message, "jobname": jobname}, {}
            answer = await asyncio.to_thread(ml_response, store, jobname)
            return 200, answer, {"Location": status_url(jobname)}
    except Exception as exc:  # every error becomes a JSON answer
        status, body_, headers = _refused(exc)
        return status, ({**body_, "jobname": jobname} if jobname else body_), headers


def parse_ml_request(body: bytes, settings: Settings) -> tuple[JobConfig, list[str], list[str] | None]:
    """The job a gpz-ml request asks for: its config (name -> prefix, gsc -> gsc_trn = gsc_res, SixSpeciesN2V),
    genes and negatives (when the list is non-empty), validated like any job's."""
    request = _request(body, settings, ML_KEYS, ", ".join(sorted(ML_KEYS)))
    name = request.get("name", "")
    if not isinstance(name, str):
        raise InvalidInput(f"name must be a string, got a {json_type(name)}")
    gsc = request.get("gsc")
    config = parse_config(
        {
            "jobname": new_jobname(name),
            "net_type": request.get("net_type"),
            "features": "SixSpeciesN2V",
            "sp_trn": request.get("sp_trn"),
            "sp_res": [request.get("sp_res")],
            "gsc_trn": gsc,
            "gsc_res": [gsc],
        }
    )
    genes = _genes(request.get("genes"), "genes", settings)
    raw_negatives = request.get("negatives") or []
    negatives = _genes(raw_negatives, "negatives", settings) if raw_negatives else None
    return config, genes, negatives


def status_url(jobname: str) -> str:
    """Where a job's status is read (GET, with the function key)."""
    return f"/api/jobs/{jobname}"


def _create_and_queue(
    store: ResultsFileStore, config: JobConfig, genes: list[str], negatives: list[str] | None, settings: Settings
) -> None:
    store.create_job(config, genes, negatives)
    enqueue_jobs(store, JobQueue.from_settings(settings), [config.jobname])
    log.info("gpz-ml: job %s queued", config.jobname)


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
        "avgps": [_number(v) for v in model.get("avgps") or []],
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
    """The JSON object of a request body, refused before parsing when over MAX_INPUT_BYTES."""
    if len(body) > settings.max_input_bytes:
        raise RequestTooLarge(f"request body is {len(body):,} bytes; the most accepted is {settings.max_input_bytes:,}")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidInput(f"request body is not JSON; send a JSON object with {expected}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"request body must be a JSON object with {expected}, got a {json_type(data)}")
    unknown = sorted(str(key) for key in set(data) - keys)
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(keys))}"[:300])
    return data


def _genes(value: Any, field: str, settings: Settings) -> list[str]:
    """A list of gene IDs, checked like a job's gene file (MAX_INPUT_GENES, MAX_INPUT_BYTES, ...)."""
    if not isinstance(value, list) or not all(isinstance(gene, str) for gene in value):
        raise InvalidInput(f"{field} must be a list of gene IDs (strings)")
    what = "negative genes" if field == "negatives" else "input genes"
    return parse_genes(
        "\n".join(value), max_genes=settings.max_input_genes, max_bytes=settings.max_input_bytes, what=what
    )


def _table(store: ResultsFileStore, jobname: str, relpath: str) -> list[dict[str, Any]]:
    """A GenePlexus TSV as JSON rows: Rank an integer, scores numbers (null for NaN), the rest text."""
    with store.result_path(jobname, relpath).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row in rows:
        for column, value in row.items():
            if column in _INTEGERS:
                row[column] = int(float(value))
            elif column in _FLOATS:
                row[column] = _number(value)
    return rows


def _lines(store: ResultsFileStore, jobname: str, relpath: str) -> list[str]:
    text = store.result_path(jobname, relpath).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _number(value: Any) -> float | None:
    """A finite number, or None (JSON has no NaN or Infinity)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _refused(exc: Exception) -> WebAnswer:
    """An error as the web app's old backend answered it: its HTTP status and {"message": ...}."""
    status, body = error_answer(exc)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if isinstance(exc, ServiceUnavailable) else {}
    return status, {"message": body["error"]}, headers


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
                q = _number(value) or 0.0
        if coding:
            weights[coding] = q
    return weights.get("gzip", weights.get("*", 0.0)) > 0
