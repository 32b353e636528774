"""PRELOAD: a worker fills a job process's warm cache when it starts, so that its first job reads no backend file.

Real job processes and real GenePlexus on the synthetic data; the cache's own counters (job_info.json's
data_cache) say whether a job found its files there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mljob import backend_data, supervisor
from mljob.job import new_jobname, parse_config
from mljob.launcher import LocalLauncher
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import State


@pytest.fixture(autouse=True)
def _fresh_job_processes():
    supervisor.shutdown()  # no job process warmed by another test
    yield
    supervisor.shutdown()


def _first_job(store: ResultsFileStore, settings: Settings, demo_genes: list[str], **params) -> dict:
    name = new_jobname("preload")
    store.create_job(parse_config({"jobname": name, **params}), demo_genes)
    final = LocalLauncher(store, settings.data_path, settings).launch(name)
    assert final.status is State.COMPLETED, final.message
    return store.read_job_info(name)["data_cache"]


def test_a_preloaded_worker_runs_its_first_job_warm(store, data_path, demo_genes, capfd):
    settings = Settings(data_path=data_path, preload="Human:STRING:Combined")
    supervisor.prestart(settings, wait=True)
    assert "PRELOAD Human:STRING:Combined: " in capfd.readouterr().err
    cache = _first_job(store, settings, demo_genes, net_type="STRING", gsc_trn="Combined", gsc_res=["Combined"])
    assert cache["misses"] == 0 and cache["hits"] > 0


def test_without_preload_the_first_job_reads_its_files(store, data_path, demo_genes):
    settings = Settings(data_path=data_path)
    supervisor.prestart(settings, wait=True)
    cache = _first_job(store, settings, demo_genes, net_type="STRING", gsc_trn="Combined", gsc_res=["Combined"])
    expected = backend_data.required_files(
        net_type="STRING", features="SixSpeciesN2V", sp_trn="Human", sp_res=["Human"], gsc_trn="Combined",
        gsc_res=["Combined"],
    )  # fmt: skip
    assert cache["misses"] >= len(expected) - 1  # (an absent NodeOrder of another network is no read)


def test_other_data_than_preloaded_is_read_by_the_job(store, data_path, demo_genes):
    settings = Settings(data_path=data_path, preload="Human:IMP:GO")
    supervisor.prestart(settings, wait=True)
    cache = _first_job(store, settings, demo_genes, net_type="STRING", gsc_trn="Combined", gsc_res=["Combined"])
    assert cache["misses"] > 0 and cache["hits"] > 0  # the ID conversions were preloaded, STRING was not


def test_preload_of_missing_data_is_logged_and_jobs_still_run(store, data_path, demo_genes, tmp_path, capfd):
    empty = tmp_path / "no-data"
    empty.mkdir()
    supervisor.prestart(Settings(data_path=empty, preload="Human:STRING:Combined"), wait=True)
    err = capfd.readouterr().err
    assert "PRELOAD Human:STRING:Combined not loaded: FileNotFoundError" in err and "Traceback" not in err
    settings = Settings(data_path=data_path)
    _first_job(store, settings, demo_genes)


def test_preload_needs_the_cache(data_path, capfd):
    supervisor.prestart(Settings(data_path=data_path, preload="Human:STRING:Combined", data_cache_mb=0), wait=True)
    assert "PRELOAD" not in capfd.readouterr().err  # DATA_CACHE_MB=0: nothing to fill


def test_function_app_preloads_when_the_host_starts(data_path, monkeypatch, capfd, tmp_path: Path):
    """Importing function_app (what the Functions host and `mljob serve` do first) starts the preloading job
    process; a bad PRELOAD is logged in words, and the app still loads."""
    import importlib

    import function_app

    monkeypatch.setenv("DATA_PATH", str(data_path))
    monkeypatch.setenv("PRELOAD", "Human:STRING:Combined")
    importlib.reload(function_app)
    supervisor.prestart(wait=True)  # the one it started
    assert "PRELOAD Human:STRING:Combined: " in capfd.readouterr().err
    monkeypatch.setenv("PRELOAD", "Human:STRING")
    with pytest.raises(Exception, match="PRELOAD: 'Human:STRING' is not SPECIES:NETWORK:GSC"):
        Settings.from_env()
    importlib.reload(function_app)  # logs, does not raise
