"""The names of a completed job's files under results/ (the job folder contract), and what the web-ready ones hold.

The files are written in the job process (`mljob.science.web_files`, `mljob.report`) and read everywhere
else (the API, the web app, the report, `JobResults`); this module imports nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODEL = "All-Genes"  # the model folder GenePlexus's save_class writes (no clustering: the only one)
TOP_GENES_FILE = "top_genes.json"
TOP_TERMS_FILE = "top_terms.json"
GRAPH_FILE = "graph.json"
INPUT_GENES_FILE = "input_genes.json"
REPORT_FILE = "report.html"
PROBS_FILE = "df_probs.tsv"  # per result folder `{MODEL}/{Species}-{GSC}/`
SIM_FILE = "df_sim.tsv"
EDGE_FILE = "df_edge.tsv"
EDGE_SYM_FILE = "df_edge_sym.tsv"


@dataclass(frozen=True)
class WebFiles:
    """What the web-ready files hold: top_genes.json, top_terms.json, every graph.json (by result key, e.g.
    "Human-Combined") and input_genes.json."""

    top_genes: dict[str, Any]
    top_terms: dict[str, Any]
    graphs: dict[str, dict[str, Any]]
    input_genes: dict[str, Any]


def result_folder(key: str) -> str:
    """The folder under results/ of one result ("Human-Combined" -> "All-Genes/Human-Combined")."""
    return f"{MODEL}/{key}"
