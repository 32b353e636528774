"""Web-ready result files written next to GenePlexus's TSVs: top genes, top terms and the network graph."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mljob.results_store import atomic_write

MODEL = "All-Genes"
TOP_GENES_FILE = "top_genes.json"
TOP_TERMS_FILE = "top_terms.json"
GRAPH_FILE = "graph.json"
TOP_TERMS = 50


def _number(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def gene_rows(df_probs: Any, top: int) -> list[dict[str, Any]]:
    """The `top` best-ranked genes of a df_probs table as JSON-ready rows."""
    rows = df_probs.sort_values("Rank").head(top)
    return [
        {
            "rank": int(r["Rank"]),
            "entrez": str(r["Entrez"]),
            "symbol": str(r["Symbol"]),
            "name": str(r["Name"]),
            "known": r["Known/Novel"] == "Known",
            "class_label": str(r["Class-Label"]),
            "probability": _number(r["Probability"]),
            "z_score": _number(r["Z-score"]),
            "p_adjusted": _number(r["P-adjusted"]),
        }
        for _, r in rows.iterrows()
    ]


def term_rows(df_sim: Any, top: int) -> list[dict[str, Any]]:
    """The `top` most similar GO/Monarch/Mondo terms of a df_sim table as JSON-ready rows."""
    rows = df_sim.sort_values("Rank").head(top)
    return [
        {
            "rank": int(r["Rank"]),
            "task": str(r["Task"]),
            "id": str(r["ID"]),
            "name": str(r["Name"]),
            "similarity": _number(r["Similarity"]),
            "z_score": _number(r["Z-score"]),
            "p_adjusted": _number(r["P-adjusted"]),
        }
        for _, r in rows.iterrows()
    ]


def graph(df_probs: Any, df_edge: Any, num_nodes: int) -> dict[str, Any]:
    """The network view: the top genes (those make_small_edgelist used) as nodes, their edges as links."""
    top = df_probs.sort_values("Rank").head(num_nodes)
    nodes = [
        {
            "id": str(r["Entrez"]),
            "symbol": str(r["Symbol"]),
            "class": str(r["Known/Novel"]),
            "probability": _number(r["Probability"]),
            "rank": int(r["Rank"]),
        }
        for _, r in top.iterrows()
    ]
    links = [
        {"source": str(e["Node1"]), "target": str(e["Node2"]), "weight": _number(e["Weight"])}
        for _, e in df_edge.iterrows()
    ]
    return {"nodes": nodes, "links": links}


def write_web_files(gp: Any, folder: Path, *, top: int) -> None:
    """Write top_genes.json, top_terms.json and graph.json (first result) plus a graph.json per result."""
    model = gp.model_info[MODEL]
    genes: dict[str, Any] = {}
    terms: dict[str, Any] = {}
    graphs: dict[str, Any] = {}
    for key, result in model.results.items():
        genes[key] = gene_rows(result.df_probs, top)
        terms[key] = term_rows(result.df_sim, TOP_TERMS)
        graphs[key] = graph(result.df_probs, result.df_edge, top)
        _write_json(folder / MODEL / key / GRAPH_FILE, graphs[key])
    _write_json(folder / TOP_GENES_FILE, {"model": MODEL, "results": genes})
    _write_json(folder / TOP_TERMS_FILE, {"model": MODEL, "results": terms})
    _write_json(folder / GRAPH_FILE, next(iter(graphs.values())))


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=1) + "\n")
