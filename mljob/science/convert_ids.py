"""What `POST /api/gpz-convert-ids` computes: GenePlexus 3.0.1's load_genes on a gene list, no job, no model."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mljob import backend_data
from mljob.errors import JobError
from mljob.science.session import open_geneplexus
from mljob.science.web_files import input_genes


def convert_ids(genes: list[str], species: str, data_path: Path, *, cache_mb: int, fast: bool) -> str:
    """load_genes for `species`, through the warm data cache: input_count, convert_ids, table_summary and
    df_convert_out (as in a job's input_genes.json), as JSON text. JobError names missing backend data."""
    missing = [name for name in backend_data.load_genes_files(species) if not (data_path / name).is_file()]
    if missing:
        raise JobError(f"this server has no GenePlexus backend data for {species}: {', '.join(missing[:3])} missing")
    params = {
        "net_type": "STRING",
        "features": "SixSpeciesN2V",
        "sp_trn": species,
        "gsc_trn": "GO",
        "sp_res": [species],
        "gsc_res": ["GO"],
    }
    with open_geneplexus(data_path, params, cache_mb=cache_mb, fast=fast) as opened:
        opened.gp.load_genes(list(genes))
        return input_genes_json(opened.gp)


def input_genes_json(gp: Any) -> str:
    """`web_files.input_genes(gp)` as JSON text. Its bulk, df_convert_out (a row per input gene), is written by
    pandas at once when every cell is text, as GenePlexus makes it (~10x faster than cell by cell)."""
    from pandas.api.types import infer_dtype  # (the ML stack is imported by GenePlexus before)

    table = gp.df_convert_out
    if not all(infer_dtype(table[column], skipna=False) == "string" for column in table.columns):
        return json.dumps(input_genes(gp))
    head = input_genes(SimpleNamespace(**{**vars(gp), "df_convert_out": table.iloc[:0]}))
    assert list(head)[-1] == "df_convert_out"  # the last key: its rows go at the end of the text
    return json.dumps(head)[: -len("[]}")] + table.to_json(orient="records") + "}"
