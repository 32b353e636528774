"""A completed job's result tables (GenePlexus's TSVs under results/) as pandas DataFrames, read as written.

IDs (Entrez, term IDs, network nodes) and the other text columns stay strings, the scores are float64 and
Rank int64; only an empty field is missing (NaN), so a symbol such as "NA" stays text. So
`df.to_csv(path, sep="\\t", index=False)` writes the file again byte for byte (tests/test_job_results.py).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pandas import DataFrame

# the number columns of df_probs.tsv, df_sim.tsv and df_edge.tsv; every other column is text
NUMBER_COLUMNS = {
    "Rank": "int64",
    "Probability": "float64",
    "Z-score": "float64",
    "P-adjusted": "float64",
    "Similarity": "float64",
    "Weight": "float64",
}


def read_table(path: Path) -> DataFrame:
    """One GenePlexus result TSV as a DataFrame (see the module's docstring for its column types)."""
    import pandas as pd

    types = defaultdict(lambda: str, NUMBER_COLUMNS)
    return pd.read_csv(path, sep="\t", dtype=types, keep_default_na=False, na_values=[""])
