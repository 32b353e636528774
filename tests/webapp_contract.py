"""The web app's contract (../shared/reference/geneplexus-web-apps.md): every key of gpz-convert-ids and gpz-ml
answers with its type, and the gpz-ml tables checked against the job's own result files, read with pandas."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

CONVERT_KEYS = {"input_count", "convert_ids", "table_summary", "df_convert_out"}
ML_KEYS = {
    "avgps",
    "df_probs",
    "df_sim",
    "df_edge",
    "df_edge_sym",
    "isolated_genes",
    "isolated_genes_sym",
    "df_convert_out_subset",
    "positive_genes",
    "neutral_gene_info",
    "jobname",
}
NETWORKS = {"BioGRID", "STRING", "IMP"}


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def number_or_null(value: Any) -> bool:
    return value is None or is_number(value)


def rows(value: Any, columns: dict[str, Any]) -> None:
    """Every row has exactly these columns, each value passing its check."""
    assert isinstance(value, list)
    for row in value:
        assert set(row) == set(columns), (sorted(row), sorted(columns))
        for column, check in columns.items():
            assert check(row[column]), (column, row[column])


def text(value: Any) -> bool:
    return isinstance(value, str)


def check_convert(body: dict[str, Any], networks: set[str] = NETWORKS) -> None:
    assert set(body) == CONVERT_KEYS
    assert isinstance(body["input_count"], int) and not isinstance(body["input_count"], bool)
    assert all(text(gene) for gene in body["convert_ids"])
    integer = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    rows(body["table_summary"], {"Network": lambda v: v in networks, "NetworkGenes": integer, "PositiveGenes": integer})
    flags = {f"In {net}?": lambda v: v in ("Y", "N") for net in networks}
    rows(body["df_convert_out"], {"Original ID": text, "Entrez ID": text, "Gene Name": text, **flags})


def check_ml(body: dict[str, Any], net_type: str) -> None:
    assert set(body) == ML_KEYS, sorted(set(body) ^ ML_KEYS)
    assert isinstance(body["avgps"], list) and all(number_or_null(v) for v in body["avgps"])
    rank = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1  # noqa: E731
    rows(
        body["df_probs"],
        {
            "Rank": rank,
            "Entrez": text,
            "Symbol": text,
            "Name": text,
            "Known/Novel": lambda v: v in ("Known", "Novel"),
            "Class-Label": lambda v: v in ("P", "N", "U"),
            "Probability": number_or_null,
            "Z-score": number_or_null,
            "P-adjusted": number_or_null,
        },
    )
    assert [r["Rank"] for r in body["df_probs"]] == sorted(r["Rank"] for r in body["df_probs"])  # best first
    rows(
        body["df_sim"],
        {
            "Rank": rank,
            "Task": text,
            "ID": text,
            "Name": text,
            "Similarity": number_or_null,
            "Z-score": number_or_null,
            "P-adjusted": number_or_null,
        },
    )
    for table in ("df_edge", "df_edge_sym"):
        rows(body[table], {"Node1": text, "Node2": text, "Weight": number_or_null})
    assert all(text(g) for g in body["isolated_genes"]) and all(text(g) for g in body["isolated_genes_sym"])
    rows(body["df_convert_out_subset"], {"Original ID": text, "Entrez ID": text, f"In {net_type}?": text})
    assert isinstance(body["positive_genes"], int) and not isinstance(body["positive_genes"], bool)
    neutral = body["neutral_gene_info"]
    assert isinstance(neutral.get("All Neutrals"), list) and all(text(g) for g in neutral["All Neutrals"])
    for term, info in neutral.items():
        if term != "All Neutrals":
            assert set(info) >= {"Genes", "Name", "Task"} and all(text(g) for g in info["Genes"]), term
    json.dumps(body, allow_nan=False)  # no NaN or Infinity anywhere


def equals_result_files(body: dict[str, Any], job: Path) -> None:
    """The answer's tables are the job's own files (read with pandas, independently of mljob)."""
    info = json.loads((job / "job_info.json").read_text())
    folder = job / "results" / "All-Genes" / info["results"][0]
    for table in ("df_probs", "df_sim", "df_edge", "df_edge_sym"):
        frame = pd.read_csv(folder / f"{table}.tsv", sep="\t", dtype=str, keep_default_na=False)
        if "Rank" in frame:
            frame = (
                frame.assign(_rank=frame["Rank"].astype(float))
                .sort_values("_rank", kind="stable")
                .drop(columns="_rank")
            )
        expected = frame.to_dict("records")
        assert len(body[table]) == len(expected), table
        for got, want in zip(body[table], expected, strict=True):
            for column, value in want.items():
                if isinstance(got[column], str):
                    assert got[column] == value, (table, column)
                elif got[column] is None:
                    assert value == "" or not math.isfinite(float(value)), (table, column, value)
                else:
                    assert got[column] == float(value), (table, column)
    for name in ("isolated_genes", "isolated_genes_sym"):
        assert body[name] == (folder / f"{name}.txt").read_text().split()
    model = json.loads((job / "results" / "All-Genes" / "model_level_config.json").read_text())
    assert body["neutral_gene_info"] == model["neutral_gene_info"]
    assert body["avgps"] == [None if v is None else float(v) for v in model["avgps"]]
    converted = pd.read_csv(job / "results" / "df_convert_out.tsv", sep="\t", dtype=str, keep_default_na=False)
    net = f"In {info['parameters']['net_type']}?"
    assert body["df_convert_out_subset"] == converted[["Original ID", "Entrez ID", net]].to_dict("records")
