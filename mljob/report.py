"""report.html: one self-contained HTML page per job for biologists (parameters, input genes, scores, results).

The page shows what the results already hold (top_genes.json, top_terms.json, each graph.json, input_genes.json,
job_info.json); the Jinja2 templates in mljob/templates/ draw it and escape everything. It needs no server and no
network: inline CSS, a small inline script (sortable tables), inline SVG networks; the only links go to NCBI Gene.
Importing this module stays cheap: jinja2 and networkx are imported when a report is rendered.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mljob
from mljob.errors import InvalidInput, JobNotFound, JobNotReady
from mljob.network_layout import finite
from mljob.result_files import (
    GRAPH_FILE,
    INPUT_GENES_FILE,
    MODEL,
    REPORT_FILE,
    TOP_GENES_FILE,
    TOP_TERMS_FILE,
    WebFiles,
)
from mljob.templating import template_environment

if TYPE_CHECKING:
    import jinja2

    from mljob.results_store import ResultsFileStore

TOP_TERMS_SHOWN = 20
NCBI_GENE_URL = "https://www.ncbi.nlm.nih.gov/gene/"
NOT_MAPPED = "Could Not be mapped to Entrez"

GSC_NAMES = {
    "GO": "Gene Ontology biological processes",
    "Monarch": "Monarch phenotypes",
    "Mondo": "Mondo diseases",
    "Combined": "GO, Monarch and Mondo combined",
}

# job_config.json keys shown in the parameter table: label and what the parameter does, in words.
PARAMETERS = {
    "net_type": ("Network", "the molecular network whose gene embeddings the model learns from"),
    "features": ("Features", "the kind of network embedding used as gene features"),
    "sp_trn": ("Training species", "the species of your input genes"),
    "gsc_trn": ("Training gene sets", "the gene-set collection used to pick negative (unrelated) genes"),
    "sp_res": ("Result species", "the species in which genes are ranked"),
    "gsc_res": ("Result gene sets", "the collection(s) of terms compared with your model"),
    "min_num_pos": ("Minimum genes", "at least this many of your genes must be in the network"),
    "min_num_pos_cv": ("Minimum genes for cross-validation", "fewer genes in the network skip cross-validation"),
    "num_folds": ("Cross-validation folds", "how many parts your genes are split into to test the model"),
    "cross_validate": ("Cross-validation", "whether the model was tested on held-out genes"),
    "random_state": ("Random seed", "makes the run repeatable"),
    "num_nodes": ("Top genes shown", "how many top-ranked genes are listed and drawn as a network"),
    "clust_method": ("Clustering", "whether your genes were first split into clusters"),
    "clust_min_size": ("Minimum cluster size", "smallest cluster that gets its own model"),
}
_NOT_SHOWN = {"jobname", "created", "callback_url"}  # in the header, or not a science parameter (and a URL)


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows: config, job_info and status.json (None when unknown) and the web-ready files."""

    config: dict[str, Any]
    info: dict[str, Any] | None
    status: dict[str, Any] | None
    top_genes: dict[str, Any]
    top_terms: dict[str, Any]
    graphs: dict[str, dict[str, Any]]
    input_genes: dict[str, Any] | None

    @classmethod
    def from_web(
        cls, config: dict[str, Any], info: dict[str, Any] | None, web: WebFiles, status: dict[str, Any] | None = None
    ) -> ReportData:
        """At run time: the files write_web_files has just written (results still in their staging folder)."""
        return cls(config, info, status, web.top_genes, web.top_terms, web.graphs, web.input_genes)

    @classmethod
    def from_store(cls, store: ResultsFileStore, jobname: str) -> ReportData:
        """A job's report data, read through the store; JobNotReady when it has no results yet."""
        if not store.has_results(jobname):  # JobNotFound for an unknown job
            raise JobNotReady(f"job {jobname} has no results yet; a report needs a completed job")
        config = store.read_config(jobname).model_dump(mode="json")
        try:
            info = store.read_job_info(jobname)
        except (JobNotFound, ValueError):
            info = None
        try:
            status = store.read_status(jobname).model_dump(mode="json")
        except InvalidInput:
            status = None
        top_genes = store.read_result_json(jobname, TOP_GENES_FILE)
        try:
            input_genes = store.read_result_json(jobname, INPUT_GENES_FILE)
        except JobNotFound:  # a job made before input_genes.json existed
            input_genes = None
        graphs = {key: store.read_result_json(jobname, f"{MODEL}/{key}/{GRAPH_FILE}") for key in top_genes["results"]}
        top_terms = store.read_result_json(jobname, TOP_TERMS_FILE)
        return cls(config, info, status, top_genes, top_terms, graphs, input_genes)


def render_report(data: ReportData) -> str:
    """The report as one HTML page."""
    from mljob.network_layout import layout_network  # networkx (numpy) inside

    config, info = data.config, data.info or {}
    versions = info.get("versions") or {}
    results = []
    for key, genes in data.top_genes.get("results", {}).items():
        species, _, gsc = key.partition("-")
        graph = data.graphs.get(key) or {}
        results.append(
            {
                "anchor": _anchor(key),
                "title": _result_title(key),
                "species": species,
                "gsc_name": GSC_NAMES.get(gsc, gsc),
                "cross_species": species != str(config.get("sp_trn", species)),
                "genes": genes,
                "known": sum(bool(gene.get("known")) for gene in genes),
                "ranked": (data.top_genes.get("ranked") or {}).get(key),
                "network": layout_network(graph) if graph.get("nodes") else None,
                "terms": (data.top_terms.get("results") or {}).get(key, [])[:TOP_TERMS_SHOWN],
            }
        )
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            jobname=str(config.get("jobname", "")) or "job",
            config=config,
            status=data.status,
            run_time=finite(info.get("total_seconds")),
            clusters=sorted(str(m) for m in info.get("models") or [] if str(m).startswith("Cluster-")),
            model=MODEL,
            parameters=[(*PARAMETERS.get(k, (k, "")), k, v) for k, v in config.items() if k not in _NOT_SHOWN],
            versions=versions,
            inputs=_inputs(data.input_genes, config),
            positives=info.get("positive_genes") or {},
            cv=_cross_validation(data.info),
            results=results,
            made=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            mljob_version=versions.get("mljob", mljob.__version__),
            geneplexus_version=versions.get("geneplexus", "3"),
        )
    )


def write_report(store: ResultsFileStore, jobname: str) -> Path:
    """Render the report of a completed job and write it (atomically) as results/report.html; return its path."""
    return store.write_result_file(jobname, REPORT_FILE, render_report(ReportData.from_store(store, jobname)))


# --- what the page shows, worked out from the data --------------------------------------------------------


def _inputs(input_genes: dict[str, Any] | None, config: dict[str, Any]) -> dict[str, Any] | None:
    """The conversion table of input_genes.json and its counts per distinct input ID; None when there is none."""
    if not input_genes:
        return None
    table = input_genes.get("df_convert_out") or []
    train_column = f"In {config.get('net_type', 'STRING')}?"
    rows, found, in_net = [], {}, {}
    for row in table:
        original, mapped = str(row.get("Original ID", "")), _mapped(row)
        rows.append({"mapped": mapped, "cells": row})
        found[original] = found.get(original, False) or mapped
        in_net[original] = in_net.get(original, False) or row.get(train_column) == "Y"
    return {
        "rows": rows,
        "net_columns": [c for c in (table[0] if table else {}) if c.startswith("In ") and c.endswith("?")],
        "given": len(found),
        "found": sum(found.values()),
        "missing": [gene for gene, ok in found.items() if not ok],
        "in_net": sum(in_net.values()),
        "networks": input_genes.get("table_summary") or [],
    }


def _mapped(row: dict[str, Any]) -> bool:
    entrez = str(row.get("Entrez ID") or "").strip()
    return bool(entrez) and entrez != NOT_MAPPED


def _cross_validation(info: dict[str, Any] | None) -> dict[str, Any]:
    """The cross-validation scores of job_info.json: `state` is unavailable (no job_info), skipped or scored."""
    if info is None:
        return {"state": "unavailable"}
    avgps = info.get("avgps")
    scores = [finite(v) for v in avgps] if isinstance(avgps, list) else []
    valid = [s for s in scores if s is not None]
    if not valid:
        return {"state": "skipped"}
    return {"state": "scored", "scores": scores, "mean": sum(valid) / len(valid)}


# --- Jinja2 -------------------------------------------------------------------------------------------------


@functools.cache
def _environment() -> jinja2.Environment:
    """The templates of mljob/templates/ with the report's filters, tests and globals, made once."""
    env = template_environment()
    env.filters.update(show=_show, when=_when)
    env.tests.update(entrez_id=_is_entrez_id, finite=lambda v: not isinstance(v, bool) and finite(v) is not None)
    env.globals.update(ncbi_gene_url=NCBI_GENE_URL)
    return env


def _anchor(key: str) -> str:
    return "result-" + re.sub(r"[^A-Za-z0-9_-]+", "-", key)


def _result_title(key: str) -> str:
    species, _, gsc = key.partition("-")
    return f"{species} genes, {gsc}" if gsc else key


def _is_entrez_id(value: Any) -> bool:
    """A gene ID that NCBI Gene can be linked to (digits only)."""
    return re.fullmatch(r"[0-9]+", str(value)) is not None


def _show(value: Any) -> str:
    """A parameter value in words."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_show(v) for v in value)
    return str(value)


def _when(stamp: Any) -> str:
    """An ISO time stamp in a friendly form (UTC)."""
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
