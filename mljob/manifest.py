"""job_info.json's plain parts: the completed run's one-line summary and its peak memory (the rest, which needs
the ML stack, is made by `mljob.science.job_info`)."""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Any


def summary(info: dict[str, Any]) -> str:
    """The completed job's status message: how many genes trained the model, and its cross-validation score."""
    avgps = info["avgps_mean"]
    cv = f", cross-validation log2(auPRC/prior) {avgps:.2f}" if avgps is not None else ""
    return (
        f"{info['positive_genes']['in_network']} of your {info['input_count']} genes were used to train the "
        f"model{cv}; results in results/"
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB.

    On Linux VmHWM from /proc/self/status, not ru_maxrss: that one is carried over from the parent
    across fork + exec, so a job process started by a big process would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # not Linux
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # macOS: bytes
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024
