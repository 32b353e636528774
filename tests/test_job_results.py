"""A job's results as one handle (JobManager.results, JobResults), the one way to create a job
(mljob.job_folders.create_job) and the one way to remove one (JobManager.cleanup, mljob.job_folders.remove_job)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mljob import JobManager, JobResults, LocalLauncher, ResultsFileStore, Settings
from mljob.errors import InvalidInput, JobBusy, JobExists, JobNotFound, JobNotReady
from mljob.job_folders import create_job, remove_job
from mljob.lease import RunLease
from mljob.science.tables import read_table
from mljob.status import State

KEYS = ["Human-Combined", "Mouse-Combined"]


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory, data_path: Path) -> JobManager:
    jobs = tmp_path_factory.mktemp("jobs")
    settings = Settings(data_path=data_path, jobs_path=jobs, lease_stale_seconds=30)
    store = ResultsFileStore.from_settings(settings)
    return JobManager(store, LocalLauncher.from_settings(settings), settings)


@pytest.fixture(scope="module")
def demo_genes_module() -> list[str]:
    """The demo gene set (conftest's demo_genes, for module-scoped fixtures)."""
    return (Path(__file__).resolve().parent.parent / "mljob" / "tools" / "demo_genes.txt").read_text().split()


@pytest.fixture(scope="module")
def done(manager: JobManager, demo_genes_module: list[str]) -> str:
    """A completed job with two results (Human and Mouse)."""
    name = manager.submit(demo_genes_module, {"sp_res": ["Human", "Mouse"]}, name="two-results")
    assert manager.status(name).status is State.COMPLETED
    return name


# --- JobResults ----------------------------------------------------------------------------------


def test_results_hold_config_job_info_and_keys_in_job_info_order(manager, done):
    results = manager.results(done)
    assert isinstance(results, JobResults) and repr(results) == f"JobResults({done!r}, keys={KEYS!r})"
    assert results.config == manager.config(done) and results.config.sp_res == ["Human", "Mouse"]
    assert results.job_info == json.loads((manager.store.job_path(done) / "job_info.json").read_text())
    assert results.keys == results.job_info["results"] == KEYS


@pytest.mark.parametrize(("table", "filename"), [("probs", "df_probs.tsv"), ("similarities", "df_sim.tsv"),
                                                 ("edges", "df_edge.tsv")])  # fmt: skip
def test_tables_are_the_files_byte_for_byte(manager, done, table, filename):
    results = manager.results(done)
    for key in KEYS:
        path = results.results_folder / "All-Genes" / key / filename
        frame = getattr(results, table)(key)
        assert isinstance(frame, pd.DataFrame) and len(frame) > 0
        assert frame.to_csv(sep="\t", index=False).encode() == path.read_bytes(), (key, filename)


def test_ids_are_strings_and_scores_numbers(manager, done):
    results = manager.results(done)
    probs, sims, edges = results.probs("Human-Combined"), results.similarities("Mouse-Combined"), results.edges(KEYS[0])
    assert all(isinstance(v, str) for v in probs["Entrez"]) and all(isinstance(v, str) for v in edges["Node1"])
    assert probs["Rank"].dtype == "int64" and probs["Probability"].dtype == "float64"
    assert sims["ID"].str.contains(":").all() and sims["Similarity"].dtype == "float64"
    ranked = json.loads(results.path("top_genes.json").read_text())["ranked"]["Human-Combined"]
    assert list(probs["Rank"]) == list(range(1, ranked + 1))  # every gene ranked, in order
    top = results.top_genes["Human-Combined"]  # top_genes.json agrees with the table, entrez as strings both
    assert [row["entrez"] for row in top] == list(probs["Entrez"][: len(top)])


def test_the_key_may_be_left_out_only_when_there_is_one_result(manager, done, demo_genes_module):
    results = manager.results(done)
    with pytest.raises(InvalidInput, match=r"has 2 results \(Human-Combined, Mouse-Combined\): name one"):
        results.probs()
    with pytest.raises(InvalidInput, match="has no result 'Fly-GO'; its results: Human-Combined, Mouse-Combined"):
        results.edges("Fly-GO")
    one = manager.submit(demo_genes_module, {"gsc_res": ["GO"]}, prefix="one")
    single = manager.results(one)
    assert single.keys == ["Human-GO"]
    assert single.probs().equals(single.probs("Human-GO")) and len(single.similarities()) > 0


def test_top_genes_and_file_paths(manager, done):
    results = manager.results(done)
    folder = manager.store.job_path(done)
    top_genes = json.loads((folder / "results" / "top_genes.json").read_text())["results"]
    assert results.top_genes == top_genes and list(top_genes) == KEYS
    assert results.folder == folder and results.results_folder == folder / "results"
    assert results.report == folder / "results" / "report.html" and results.report.is_file()
    assert set(results.files) == set(manager.store.list_results(done)) == set(results.job_info["result_files"])
    assert results.files["All-Genes/Mouse-Combined/df_sim.tsv"] == results.path("All-Genes/Mouse-Combined/df_sim.tsv")
    with pytest.raises(JobNotFound):
        results.path("no-such-file.tsv")
    with pytest.raises(InvalidInput):
        results.path("../job_config.json")


def test_a_job_that_has_not_completed_has_no_results(manager, demo_genes_module):
    created = manager.submit(demo_genes_module, name="not-yet", launch=False)
    with pytest.raises(JobNotReady, match="job not-yet has no results: it is created"):
        manager.results(created)
    failed = manager.submit(["NOTAGENE1", "NOTAGENE2"], name="unknown-genes")
    assert manager.status(failed).status is State.FAILED
    with pytest.raises(JobNotReady, match=r"job unknown-genes has no results: it is failed \(.+\)"):
        manager.results(failed)
    with pytest.raises(JobNotFound, match="job no-such-job not found"):
        manager.results("no-such-job")


def test_the_handle_imports_no_pandas_until_a_table_is_asked_for(manager, done):
    script = (
        "import sys\n"
        "from mljob import JobManager, LocalLauncher, ResultsFileStore\n"
        f"store = ResultsFileStore({str(manager.store.root)!r})\n"
        "results = JobManager(store, LocalLauncher(store, '.')).results(sys.argv[1])\n"
        "assert results.top_genes and results.report.is_file() and results.files and results.keys\n"
        "assert 'pandas' not in sys.modules, 'pandas imported'\n"
        "results.probs('Human-Combined')\n"
        "assert 'pandas' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", script, done], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_read_table_keeps_text_as_written(tmp_path):
    """Only an empty field is missing: a symbol "NA" or "null" stays text, an empty score NaN, inf a number."""
    text = (
        "Entrez\tSymbol\tName\tKnown/Novel\tClass-Label\tProbability\tZ-score\tP-adjusted\tRank\n"
        "0042\tNA\tnull\tNovel\tU\t0.5\t\t1.0\t1\n"
        '7157\tTP53\t"tumor protein p53, ""the guardian"""\tKnown\tP\t0.25\tinf\t-inf\t2\n'
    )
    path = tmp_path / "df_probs.tsv"
    path.write_text(text)
    frame = read_table(path)
    assert list(frame["Entrez"]) == ["0042", "7157"] and list(frame["Symbol"]) == ["NA", "TP53"]
    assert frame["Name"][0] == "null" and pd.isna(frame["Z-score"][0]) and frame["Z-score"][1] == float("inf")
    assert frame.to_csv(sep="\t", index=False) == text


# --- create_job: the one way a job is made -----------------------------------------------------------


def test_create_job_validates_then_writes_the_folder_whole(tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    store = ResultsFileStore(jobs, max_genes=3)
    name = create_job(store, "CDK1\ncdk1\nCCNB1", {"net_type": "IMP"}, prefix="My Genes!", negatives=["X1"])
    assert name.startswith("my-genes-") and store.read_genes(name) == ["CDK1", "CCNB1"]
    assert store.read_config(name).net_type == "IMP" and store.read_negatives(name) == ["X1"]
    assert store.read_status(name).status is State.CREATED
    with pytest.raises(InvalidInput, match="the most accepted is 3"):  # the store's MAX_INPUT_GENES
        create_job(store, ["A", "B", "C", "D"], name="too-many")
    with pytest.raises(InvalidInput, match="net_type"):
        create_job(store, ["A"], {"net_type": "Nope"}, name="bad-params")
    with pytest.raises(JobExists):
        create_job(store, ["A"], name=name)
    assert create_job(store, ["B"], name=name, replace=True) == name and store.read_genes(name) == ["B"]
    assert sorted(p.name for p in jobs.iterdir()) == [name]  # nothing written for the refused ones


# --- cleanup: the one way a job is removed --------------------------------------------------------------


def set_state(store: ResultsFileStore, name: str, state: State) -> None:
    path = store.job_path(name) / "status.json"
    status = json.loads(path.read_text())
    status["status"] = state.value
    path.write_text(json.dumps(status))


@pytest.mark.parametrize("state", [State.CREATED, State.COMPLETED, State.FAILED, State.TIMEOUT, State.CANCELLED])
def test_cleanup_removes_a_created_or_finished_job(manager, state):
    name = manager.submit(["CDK1"], name=f"gone-{state.value}", launch=False)
    set_state(manager.store, name, state)
    manager.cleanup(name)
    assert not manager.store.exists(name) and not list(manager.store.root.glob(".trash-*"))


def test_cleanup_removes_a_completed_job_and_a_job_with_a_broken_status(manager, demo_genes_module):
    name = manager.submit(demo_genes_module, name="finished-job")
    assert manager.status(name).status is State.COMPLETED
    manager.cleanup(name)
    assert not manager.store.exists(name)
    broken = manager.submit(["CDK1"], name="broken-status", launch=False)
    (manager.store.job_path(broken) / "status.json").write_text("{not json")
    manager.cleanup(broken)
    assert not manager.store.exists(broken)


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (State.QUEUED, "job kept-queued is queued; it cannot be removed: its queue message would find no job; "
                       "cancel it first"),
        (State.RUNNING, "job kept-running is running; it cannot be removed: cancel it first, or wait until it ends"),
    ],
)  # fmt: skip
def test_cleanup_refuses_a_queued_or_running_job(manager, state, words):
    name = manager.submit(["CDK1"], name=f"kept-{state.value}", launch=False)
    set_state(manager.store, name, state)
    with pytest.raises(JobNotReady, match=words):
        manager.cleanup(name)
    assert manager.store.exists(name) and not manager.store.lease_path(name).exists()


def test_cleanup_refuses_a_job_whose_run_holds_its_lease(manager):
    name = manager.submit(["CDK1"], name="leased-job", launch=False)  # status created: a run is just starting
    with RunLease(manager.store, name, stale_after=30) as lease:
        with pytest.raises(JobBusy, match=rf"job leased-job is being run \({lease.owner}\); it cannot be removed"):
            manager.cleanup(name)
        assert manager.store.exists(name) and lease.holder() == lease.owner
    remove_job(manager.store, name, manager.settings)  # the run ended: now it goes
    assert not manager.store.exists(name)


def test_cleanup_of_an_unknown_job_is_not_found(manager):
    with pytest.raises(JobNotFound, match="job no-such-job not found"):
        manager.cleanup("no-such-job")
    with pytest.raises(InvalidInput, match="invalid job name"):
        manager.cleanup("../etc")
