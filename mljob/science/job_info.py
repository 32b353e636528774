"""job_info.json: the manifest of a completed run, made from the pipeline's result (versions of the ML stack,
scores and gene counts read off the fitted GenePlexus object)."""

from __future__ import annotations

import platform
import time
from typing import Any

import mljob
from mljob.manifest import peak_rss_mb
from mljob.result_files import MODEL
from mljob.science.pipeline import PipelineResult


def job_info(result: PipelineResult) -> dict[str, Any]:
    """The manifest: parameters, versions, backend files read, timings, memory, scores and gene counts.

    `total_seconds` is the time so far; the caller adds `result_files` once the results are stored.
    """
    import geneplexus
    import numpy
    import sklearn

    gp, config, data_path = result.gp, result.config, result.data_path
    model = gp.model_info[MODEL]
    scores = [float(x) for x in (model.avgps or []) if x is not None]  # None per fold when CV was skipped
    return {
        "jobname": config.jobname,
        "parameters": config.model_dump(mode="json"),
        "versions": {
            "mljob": mljob.__version__,
            "geneplexus": geneplexus.__version__,
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "data_path": str(data_path),
        "backend_files": [{"name": name, "bytes": (data_path / name).stat().st_size} for name in result.backend_files],
        "seconds": dict(result.seconds),
        "fast_path": result.fast_path,  # whether mljob.science.fast_path ran GenePlexus's slow steps (FAST_PATH)
        "total_seconds": round(time.time() - result.started, 3),
        "peak_memory_mb": round(peak_rss_mb(), 1),
        "avgps": scores or None,
        "avgps_mean": sum(scores) / len(scores) if scores else None,
        "input_count": len(result.genes),
        "converted_count": int(gp.input_count),
        "negatives_count": len(result.negatives or []),
        "positive_genes": {
            "in_network": len(model.pos_genes_in_net),
            "not_in_network": len(model.genes_not_in_net),
            "negatives_used": len(model.negative_genes),
        },
        "network_summary": [
            {k: (int(v) if isinstance(v, numpy.integer) else v) for k, v in row.items()} for row in gp.table_summary
        ],
        "models": list(gp.model_info),
        "results": list(model.results),
    }
