"""The GenePlexus pipeline of one job: parameters and genes in, the fitted GenePlexus object and its timings out.

It knows nothing of job folders, status files or queues: progress goes to a callback. GenePlexus,
numpy and pandas are imported only when a pipeline runs, so importing this module stays cheap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mljob import backend_data
from mljob.errors import JobError
from mljob.job import JobConfig
from mljob.science.session import open_geneplexus

log = logging.getLogger(__name__)

# Each step of a run and the share of the whole run done when it starts (status.json's progress).
# "saving" is the step after the pipeline: whoever stores the results reports it.
STEP_PERCENT = {
    "checking inputs": 1,
    "loading genes": 5,
    "loading negatives": 10,
    "clustering": 12,
    "fitting": 20,
    "predicting": 60,
    "similarities": 75,
    "network": 85,
    "saving": 92,
}

OnStep = Callable[[str, int], None]


@dataclass(frozen=True)
class PipelineResult:
    """What one pipeline run made: the GenePlexus object (models, results) and how it got there."""

    gp: Any
    config: JobConfig
    genes: list[str]
    negatives: list[str] | None
    data_path: Path
    backend_files: list[str]
    started: float  # time.time() at the start
    seconds: dict[str, float] = field(default_factory=dict)  # per step
    fast_path: bool = False  # whether mljob.science.fast_path ran (FAST_PATH on and geneplexus 3.0.1)


def analyse(
    config: JobConfig,
    genes: list[str],
    negatives: list[str] | None,
    data_path: Path,
    *,
    on_step: OnStep = lambda step, percent: None,
    cache_mb: int = 0,
    fast_path: bool = True,
) -> PipelineResult:
    """load_genes -> load_negatives -> cluster_input -> fit -> predict -> make_sim_dfs -> make_small_edgelist.

    `on_step(step, percent)` is called as each step starts. JobError, in words, for what a retry
    cannot fix (missing backend data, too few genes in the network); GenePlexus's own errors otherwise.
    `cache_mb` is the warm backend-data cache's budget (DATA_CACHE_MB; 0 = off); `fast_path` runs GenePlexus
    with mljob.science.fast_path's equivalents of its slow steps (FAST_PATH; the same results).
    """
    started = time.time()
    seconds: dict[str, float] = {}

    @contextmanager
    def step(name: str) -> Iterator[None]:
        on_step(name, STEP_PERCENT[name])
        log.info("job %s: %s", config.jobname, name)
        start = time.perf_counter()
        yield
        seconds[name] = round(time.perf_counter() - start, 4)

    with step("checking inputs"):
        backend_files = check_backend_data(config, data_path)

    from geneplexus.exception import NoPositivesError

    with open_geneplexus(data_path, config.geneplexus_init(), cache_mb=cache_mb, fast=fast_path) as opened:
        gp = opened.gp
        with step("loading genes"):
            gp.load_genes(list(genes))  # copies: GenePlexus changes lists it is given
        _check_enough_genes(gp, config, len(genes))
        if negatives:
            with step("loading negatives"):
                gp.load_negatives(list(negatives))
        if config.clust_method:
            with step("clustering"):
                gp.cluster_input(
                    clust_method=config.clust_method, clust_min_size=config.clust_min_size, clust_kwargs={}
                )
        with step("fitting"):
            try:
                gp.fit(
                    logreg_kwargs={},
                    min_num_pos=config.min_num_pos,
                    min_num_pos_cv=config.min_num_pos_cv,
                    num_folds=config.num_folds,
                    random_state=config.random_state,
                    cross_validate=config.cross_validate,
                )
            except NoPositivesError as exc:
                raise JobError(
                    f"too few of your genes are in the {config.net_type} network to train a model: {exc}"
                ) from None
        with step("predicting"):
            gp.predict()
        with step("similarities"):
            gp.make_sim_dfs()
        with step("network"):
            gp.make_small_edgelist(num_nodes=config.num_nodes)
    return PipelineResult(
        gp, config, list(genes), negatives, data_path, backend_files, started, seconds, opened.fast_path
    )


def save_class(gp: Any, folder: Path) -> None:
    """gp.save_class(folder, "all"), working around GenePlexus 3.0.1 failing to save after load_negatives.

    save_class puts every DataFrame-free attribute into top_level_config.json but forgets
    df_convert_out_negatives (a TypeError); it is set aside and written as its own TSV instead.
    """
    negatives_table = gp.__dict__.pop("df_convert_out_negatives", None)
    try:
        gp.save_class(str(folder), save_type="all", zip_output=False, overwrite=False)
    finally:
        if negatives_table is not None:
            gp.df_convert_out_negatives = negatives_table
    if negatives_table is not None:
        negatives_table.to_csv(folder / "df_convert_out_negatives.tsv", sep="\t", index=False)


def check_backend_data(config: JobConfig, data_path: Path) -> list[str]:
    """The backend files this job reads; JobError naming the missing ones (nothing is downloaded)."""
    params = dict(
        net_type=config.net_type,
        features=config.features,
        sp_trn=config.sp_trn,
        sp_res=config.sp_res,
        gsc_trn=config.gsc_trn,
        gsc_res=config.gsc_res,
        clustering=config.clust_method is not None,
    )
    if not data_path.is_dir():
        raise JobError(f"the GenePlexus backend data folder {data_path} does not exist")
    missing = backend_data.missing_files(data_path, **params)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise JobError(
            f"GenePlexus backend data for {config.sp_trn}/{config.net_type} is missing from "
            f"{data_path}: {shown}; download it (scripts/download_data_for_geneplexus.py) "
            "before running the job"
        )
    return backend_data.required_files(**params)


def _check_enough_genes(gp: Any, config: JobConfig, given: int) -> None:
    """JobError in words when too few input genes are in the training network."""
    table = gp.df_convert_out
    column = f"In {config.net_type}?"
    in_net = table.loc[table[column] == "Y", "Entrez ID"].nunique() if column in table else 0
    found = gp.input_count
    if in_net < config.min_num_pos:
        raise JobError(
            f"too few of your genes are in the {config.net_type} network for {config.sp_trn}: "
            f"{in_net} of your {given} genes were found in it ({found} recognised as {config.sp_trn} genes at all), "
            f"and at least {config.min_num_pos} are needed to train a model (min_num_pos). "
            f"Check that the genes are {config.sp_trn} gene symbols, Entrez or Ensembl IDs."
        )
