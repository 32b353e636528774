"""Web-ready result files written next to GenePlexus's TSVs: top genes, top terms, network graphs, input genes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mljob.network_layout import finite
from mljob.result_files import GRAPH_FILE, INPUT_GENES_FILE, MODEL, TOP_GENES_FILE, TOP_TERMS_FILE, WebFiles
from mljob.results_store import atomic_write

TOP_TERMS = 50


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
            "probability": finite(r["Probability"]),
            "z_score": finite(r["Z-score"]),
            "p_adjusted": finite(r["P-adjusted"]),
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
            "similarity": finite(r["Similarity"]),
            "z_score": finite(r["Z-score"]),
            "p_adjusted": finite(r["P-adjusted"]),
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
            "probability": finite(r["Probability"]),
            "rank": int(r["Rank"]),
        }
        for _, r in top.iterrows()
    ]
    links = [
        {"source": str(e["Node1"]), "target": str(e["Node2"]), "weight": finite(e["Weight"])}
        for _, e in df_edge.iterrows()
    ]
    return {"nodes": nodes, "links": links}


def input_genes(gp: Any) -> dict[str, Any]:
    """GenePlexus's load_genes outputs, shaped as the web app's gpz-convert-ids response."""
    return {
        "input_count": int(gp.input_count),
        "convert_ids": [str(gene) for gene in gp.convert_ids],
        "table_summary": [{key: _plain(value) for key, value in row.items()} for row in gp.table_summary],
        "df_convert_out": [
            {column: _plain(value) for column, value in row.items()} for row in gp.df_convert_out.to_dict("records")
        ],
    }


def _plain(value: Any) -> Any:
    """A table cell as JSON: numpy scalars as Python numbers, NaN and infinity as None, anything else but numbers
    as text."""
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if value is None or isinstance(value, float):
        return finite(value)
    return value if isinstance(value, int | float) else str(value)


def write_web_files(gp: Any, folder: Path, *, top: int) -> WebFiles:
    """Write top_genes.json, top_terms.json, graph.json (first result), a graph.json per result and
    input_genes.json into `folder`; return what was written."""
    model = gp.model_info[MODEL]
    genes: dict[str, Any] = {}
    ranked: dict[str, int] = {}
    terms: dict[str, Any] = {}
    graphs: dict[str, dict[str, Any]] = {}
    for key, result in model.results.items():
        genes[key] = gene_rows(result.df_probs, top)
        ranked[key] = len(result.df_probs)
        terms[key] = term_rows(result.df_sim, TOP_TERMS)
        graphs[key] = graph(result.df_probs, result.df_edge, top)
        _write_json(folder / MODEL / key / GRAPH_FILE, graphs[key])
    web = WebFiles(
        top_genes={"model": MODEL, "results": genes, "ranked": ranked},
        top_terms={"model": MODEL, "results": terms},
        graphs=graphs,
        input_genes=input_genes(gp),
    )
    _write_json(folder / TOP_GENES_FILE, web.top_genes)
    _write_json(folder / TOP_TERMS_FILE, web.top_terms)
    _write_json(folder / GRAPH_FILE, next(iter(graphs.values())))
    _write_json(folder / INPUT_GENES_FILE, web.input_genes)
    return web


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=1) + "\n")
