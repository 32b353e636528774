"""What `POST /api/gpz-convert-ids` computes: GenePlexus 3.0.1's load_genes on a gene list, no job, no model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mljob import backend_data
from mljob.errors import JobError
from mljob.science.session import open_geneplexus
from mljob.science.web_files import input_genes


def convert_ids(genes: list[str], species: str, data_path: Path, *, cache_mb: int, fast: bool) -> dict[str, Any]:
    """load_genes for `species`, through the warm data cache: input_count, convert_ids, table_summary and
    df_convert_out (as in a job's input_genes.json). JobError names missing backend data."""
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
        return input_genes(opened.gp)
