"""ResultsFileStore: job folders on disk, written whole or not at all, never leading out of the jobs folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from mljob.errors import InvalidInput, JobExists, JobNotFound
from mljob.job import JobConfig
from mljob.results_store import ResultsFileStore, atomic_write
from mljob.status import JobStatus, Progress, State

# --- helpers ---------------------------------------------------------------------------------


def snapshot(top: Path) -> dict[str, object]:
    """Every entry under `top` (dot entries too) with its content: files by bytes, links by target."""
    tree: dict[str, object] = {}
    for path in sorted(top.rglob("*")):
        key = path.relative_to(top).as_posix()
        if path.is_symlink():
            tree[key] = ("link", os.readlink(path))
        elif path.is_dir():
            tree[key] = "dir"
        else:
            tree[key] = path.read_bytes()
    return tree


def dot_entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def root(jobs_path: Path) -> Path:
    return jobs_path


def make_job(store: ResultsFileStore, name: str = "my-job", genes=("TP53", "BRCA1"), negatives=None, **fields) -> Path:
    return store.create_job(JobConfig(jobname=name, **fields), list(genes), negatives)


def write_results(store: ResultsFileStore, name: str, files: dict[str, str]) -> None:
    with store.staging_results(name) as staging:
        for rel, text in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_text(text)


# --- the store -------------------------------------------------------------------------------


def test_a_missing_jobs_folder_is_refused(tmp_path):
    with pytest.raises(InvalidInput) as exc:
        ResultsFileStore(tmp_path / "missing")
    assert "does not exist or is not a folder" in str(exc.value)
    assert not (tmp_path / "missing").exists()


def test_a_file_as_jobs_folder_is_refused(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(InvalidInput, match="is not a folder"):
        ResultsFileStore(path)


def test_root_is_resolved(root):
    assert ResultsFileStore(str(root / ".." / "jobs")).root == root.resolve()


# --- atomic_write ----------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["text é\n", b"\x00bytes\xff"])
def test_atomic_write_writes_and_replaces(tmp_path, data):
    path = tmp_path / "f.json"
    path.write_text("old")
    atomic_write(path, data)
    assert path.read_bytes() == (data.encode() if isinstance(data, str) else data)
    assert os.listdir(tmp_path) == ["f.json"]


def test_atomic_write_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "status.json"
    path.write_text("old content")

    def fail(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write(path, "new content that must not appear")
    assert path.read_text() == "old content"
    assert os.listdir(tmp_path) == ["status.json"]


def test_atomic_write_failure_while_writing_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"

    def fail(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="fsync failed"):
        atomic_write(path, "x")
    assert os.listdir(tmp_path) == []


# --- create_job ------------------------------------------------------------------------------


def test_create_job_writes_config_genes_and_status(store, root):
    config = JobConfig(jobname="my-job", sp_res=["Human", "Mouse"], num_folds=4)
    path = store.create_job(config, ["TP53", "BRCA1", "672"])
    assert path == root / "my-job"
    assert sorted(os.listdir(path)) == ["input_genes.txt", "job_config.json", "status.json"]
    assert (path / "input_genes.txt").read_text() == "TP53\nBRCA1\n672\n"
    assert JobConfig.model_validate_json((path / "job_config.json").read_text()) == config
    status = JobStatus.model_validate_json((path / "status.json").read_text())
    assert status.jobname == "my-job"
    assert status.status is State.CREATED
    assert status.code == 201
    assert len(status.history) == 1
    assert dot_entries(root) == []
    assert dot_entries(path) == []


def test_create_job_writes_negatives_only_when_given(store):
    without = make_job(store, "no-negatives")
    with_negs = make_job(store, "with-negatives", negatives=["EGFR", "MYC"])
    assert not (without / "input_negatives.txt").exists()
    assert (with_negs / "input_negatives.txt").read_text() == "EGFR\nMYC\n"


def test_create_job_refuses_an_existing_job(store, root):
    make_job(store, genes=["A"])
    before = snapshot(root)
    with pytest.raises(JobExists) as exc:
        make_job(store, genes=["B"])
    assert "my-job exists already" in str(exc.value)
    assert snapshot(root) == before


def test_create_job_with_replace_replaces_the_whole_folder(store, root):
    path = make_job(store, genes=["OLD"], negatives=["NEG"], num_nodes=10)
    write_results(store, "my-job", {"old.tsv": "x"})
    store.write_job_info("my-job", {"old": True})
    (path / "job.log").write_text("old log\n")
    new_config = JobConfig(jobname="my-job", num_nodes=20)
    assert store.create_job(new_config, ["NEW"], replace=True) == path
    assert sorted(os.listdir(path)) == ["input_genes.txt", "job_config.json", "status.json"]
    assert store.read_config("my-job") == new_config
    assert store.read_genes("my-job") == ["NEW"]
    assert store.read_negatives("my-job") is None
    assert len(store.read_status("my-job").history) == 1
    assert dot_entries(root) == []


def test_create_job_with_replace_creates_a_new_job_too(store):
    store.create_job(JobConfig(jobname="fresh-job"), ["A"], replace=True)
    assert store.read_genes("fresh-job") == ["A"]


# --- exists / list_jobs ----------------------------------------------------------------------


def test_exists(store):
    assert not store.exists("my-job")
    make_job(store)
    assert store.exists("my-job")


def test_list_jobs_lists_only_valid_job_folders(store, root, tmp_path):
    make_job(store, "zeta-job")
    make_job(store, "alpha-job")
    (root / ".hidden-job").mkdir()
    (root / ".staging-abc").mkdir()
    (root / "file-job").write_text("not a folder")
    (root / "UPPER").mkdir()
    (root / "with_underscore").mkdir()
    (root / "ab").mkdir()
    outside = tmp_path / "outside-job"
    outside.mkdir()
    (root / "link-job").symlink_to(outside)
    (root / "link-inside").symlink_to(root / "alpha-job")
    assert store.list_jobs() == ["alpha-job", "zeta-job"]


def test_list_jobs_of_an_empty_store(store):
    assert store.list_jobs() == []


# --- config and genes ------------------------------------------------------------------------


def test_read_and_write_config(store):
    make_job(store, num_nodes=10)
    config = store.read_config("my-job")
    assert config.num_nodes == 10
    changed = config.model_copy(update={"num_nodes": 99})
    store.write_config(changed)
    assert store.read_config("my-job") == changed
    assert dot_entries(store.job_path("my-job")) == []


def test_a_config_naming_another_job_is_refused(store, root):
    make_job(store)
    (root / "my-job" / "job_config.json").write_text(JobConfig(jobname="other-job").to_json())
    with pytest.raises(InvalidInput) as exc:
        store.read_config("my-job")
    assert "names another job (other-job)" in str(exc.value)


def test_a_corrupt_config_is_refused(store, root):
    make_job(store)
    (root / "my-job" / "job_config.json").write_text('{"jobname": "my-job", "num_folds": 99}')
    with pytest.raises(InvalidInput, match="num_folds"):
        store.read_config("my-job")


def test_a_missing_config_is_refused(store, root):
    make_job(store)
    (root / "my-job" / "job_config.json").unlink()
    with pytest.raises(InvalidInput, match=r"has no job_config\.json"):
        store.read_config("my-job")


def test_write_config_of_a_missing_job(store, root):
    with pytest.raises(JobNotFound):
        store.write_config(JobConfig(jobname="no-such-job"))
    assert os.listdir(root) == []


def test_read_genes(store):
    make_job(store, genes=["TP53", "BRCA1"])
    assert store.read_genes("my-job") == ["TP53", "BRCA1"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"TP53\n\x00\x01\x02binary", "contains binary data"),
        (b"\xff\xfeT\x00P\x00", "UTF-16"),
        (b"TP53\n\xe9\n", "not UTF-8"),
        (b"   \n", "is empty"),
    ],
)
def test_a_tampered_gene_file_is_refused(store, root, content, words):
    make_job(store)
    (root / "my-job" / "input_genes.txt").write_bytes(content)
    with pytest.raises(InvalidInput) as exc:
        store.read_genes("my-job")
    assert "input genes" in str(exc.value)
    assert words in str(exc.value)


def test_read_genes_applies_the_store_limits(root):
    store = ResultsFileStore(root, max_genes=2, max_bytes=20)
    make_job(store, "many-genes", genes=["A", "B", "C"])
    with pytest.raises(InvalidInput, match="3 distinct genes"):
        store.read_genes("many-genes")
    make_job(store, "big-file", genes=["G" * 30])
    with pytest.raises(InvalidInput, match="the most accepted is 20 bytes"):
        store.read_genes("big-file")


def test_a_missing_gene_file_is_refused(store, root):
    make_job(store)
    (root / "my-job" / "input_genes.txt").unlink()
    with pytest.raises(InvalidInput, match=r"has no input_genes\.txt"):
        store.read_genes("my-job")


def test_read_negatives(store):
    make_job(store, "no-negs")
    make_job(store, "has-negs", negatives=["EGFR", "egfr", "MYC"])
    assert store.read_negatives("no-negs") is None
    assert store.read_negatives("has-negs") == ["EGFR", "MYC"]


def test_read_genes_of_a_missing_job(store):
    with pytest.raises(JobNotFound, match="no-such-job not found"):
        store.read_genes("no-such-job")


# --- status ----------------------------------------------------------------------------------


def test_update_status_appends_history(store):
    make_job(store)
    running = store.update_status("my-job", State.RUNNING, "run 1", progress=Progress(step="a", percent=5), attempt=1)
    done = store.update_status("my-job", State.COMPLETED, "done")
    assert store.read_status("my-job") == done
    assert [e.status for e in done.history] == [State.CREATED, State.RUNNING, State.COMPLETED]
    assert done.started == running.started
    assert done.finished is not None
    assert done.attempt == 1
    assert dot_entries(store.job_path("my-job")) == []


def test_update_status_is_atomic(store, monkeypatch):
    path = make_job(store) / "status.json"
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk gone"):
        store.update_status("my-job", State.RUNNING, "run 1")
    assert path.read_bytes() == before
    assert dot_entries(path.parent) == []


def test_read_status_of_a_missing_status_file(store, root):
    make_job(store)
    (root / "my-job" / "status.json").unlink()
    with pytest.raises(InvalidInput) as exc:
        store.read_status("my-job")
    assert "job my-job has no status.json" in str(exc.value)


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"jobname": "my-job"}', b"\xff\x00", b"[]"])
def test_read_status_of_a_corrupt_status_file(store, root, content):
    make_job(store)
    (root / "my-job" / "status.json").write_bytes(content)
    with pytest.raises(InvalidInput) as exc:
        store.read_status("my-job")
    assert "status.json of job my-job is corrupt" in str(exc.value)


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_update_status_on_a_corrupt_or_missing_status_starts_a_fresh_history(store, root, damage):
    make_job(store)
    path = root / "my-job" / "status.json"
    if damage == "corrupt":
        path.write_text("{garbage")
    else:
        path.unlink()
    status = store.update_status("my-job", State.RUNNING, "run 1")
    assert status.status is State.RUNNING
    assert [e.status for e in status.history] == [State.CREATED, State.RUNNING]
    assert "missing or corrupt" in status.history[0].message
    assert store.read_status("my-job") == status


@pytest.mark.parametrize("before", [None, b"{garbage", "valid"])
def test_restore_status_puts_back_exactly_what_status_snapshot_saw(store, root, before):
    path = make_job(store) / "status.json"
    if before is None:
        path.unlink()
    elif before != "valid":
        path.write_bytes(before)
    snapshot = store.status_snapshot("my-job")
    assert snapshot == (None if before is None else path.read_bytes())
    store.update_status("my-job", State.QUEUED, "queued")
    store.restore_status("my-job", snapshot)
    assert (path.read_bytes() if path.exists() else None) == snapshot
    assert dot_entries(path.parent) == []


def test_update_status_of_a_missing_job(store, root):
    with pytest.raises(JobNotFound):
        store.update_status("no-such-job", State.RUNNING)
    assert os.listdir(root) == []


def test_a_status_naming_another_job_is_not_written_to_that_job(store, root):
    make_job(store, "aaa-job")
    make_job(store, "bbb-job")
    (root / "aaa-job" / "status.json").write_text(JobStatus.new("bbb-job").model_dump_json())
    other = (root / "bbb-job" / "status.json").read_bytes()
    try:
        store.update_status("aaa-job", State.RUNNING, "run 1")
    except InvalidInput:
        pass
    assert (root / "bbb-job" / "status.json").read_bytes() == other


# --- log -------------------------------------------------------------------------------------


def test_log_handler_appends_to_job_log(store, root):
    make_job(store)
    assert store.read_log("my-job") == ""
    logger = logging.getLogger("mljob.test.results_store")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    for text in ("first run", "second run"):
        handler = store.log_handler("my-job")
        logger.addHandler(handler)
        try:
            logger.info(text)
            logger.debug("hidden at INFO")
        finally:
            logger.removeHandler(handler)
            handler.close()
    log = (root / "my-job" / "job.log").read_text()
    assert store.log_path("my-job") == root / "my-job" / "job.log"
    assert store.read_log("my-job") == log
    assert log.index("first run") < log.index("second run")
    assert "INFO mljob.test.results_store: first run" in log
    assert "hidden at INFO" not in log


# --- results ---------------------------------------------------------------------------------


def test_staging_results_success_makes_results_appear_whole(store, root):
    make_job(store)
    with store.staging_results("my-job") as staging:
        assert staging.is_dir()
        assert staging.name.startswith(".")
        assert list(staging.iterdir()) == []
        (staging / "df_probs.tsv").write_text("probs")
        (staging / "sub").mkdir()
        (staging / "sub" / "model.json").write_text("{}")
        assert not (root / "my-job" / "results").exists()
    assert store.has_results("my-job")
    assert (root / "my-job" / "results" / "df_probs.tsv").read_text() == "probs"
    assert store.list_results("my-job") == ["df_probs.tsv", "sub/model.json"]
    assert dot_entries(root / "my-job") == []


def test_staging_results_exception_leaves_nothing(store, root):
    make_job(store)
    with pytest.raises(RuntimeError, match="run failed"), store.staging_results("my-job") as staging:
        (staging / "partial.tsv").write_text("half")
        raise RuntimeError("run failed")
    assert not (root / "my-job" / "results").exists()
    assert not store.has_results("my-job")
    assert dot_entries(root / "my-job") == []


def test_a_second_staging_replaces_results_whole(store, root):
    make_job(store)
    write_results(store, "my-job", {"a.tsv": "1", "old/b.tsv": "2"})
    write_results(store, "my-job", {"c.tsv": "3"})
    assert store.list_results("my-job") == ["c.tsv"]
    assert dot_entries(root / "my-job") == []


def test_leftover_staging_folders_are_cleaned_at_the_next_staging(store, root):
    make_job(store)
    for name in (".staging-crashed1", ".staging-crashed2"):
        (root / "my-job" / name / "deep").mkdir(parents=True)
        (root / "my-job" / name / "deep" / "x.tsv").write_text("x")
    write_results(store, "my-job", {"a.tsv": "1"})
    assert dot_entries(root / "my-job") == []
    assert store.list_results("my-job") == ["a.tsv"]


def test_staging_results_of_a_missing_job(store, root):
    with pytest.raises(JobNotFound), store.staging_results("no-such-job"):
        pass
    assert os.listdir(root) == []


def test_discard_results(store, root):
    make_job(store)
    write_results(store, "my-job", {"a.tsv": "1"})
    store.write_job_info("my-job", {"x": 1})
    store.discard_results("my-job")
    assert not (root / "my-job" / "results").exists()
    assert not (root / "my-job" / "job_info.json").exists()
    assert dot_entries(root / "my-job") == []
    assert store.list_results("my-job") == []
    store.discard_results("my-job")  # nothing to discard is fine


def test_list_results_without_results(store):
    make_job(store)
    assert store.list_results("my-job") == []
    assert not store.has_results("my-job")


def test_result_path_and_read_result_json(store, root):
    make_job(store)
    write_results(store, "my-job", {"a.json": '{"k": [1, 2]}', "sub/b.tsv": "x"})
    assert store.result_path("my-job", "sub/b.tsv") == root / "my-job" / "results" / "sub" / "b.tsv"
    assert store.read_result_json("my-job", "a.json") == {"k": [1, 2]}


def test_result_path_of_a_missing_file(store):
    make_job(store)
    write_results(store, "my-job", {"a.tsv": "1"})
    with pytest.raises(JobNotFound, match=r"has no result file nope\.tsv"):
        store.result_path("my-job", "nope.tsv")
    with pytest.raises(JobNotFound):
        store.result_path("my-job", "")


@pytest.mark.parametrize(
    "relpath",
    ["../x", "../job_config.json", "../status.json", "../../x", "../../../etc/passwd", "sub/../../status.json"],
)
def test_result_path_refuses_paths_leading_out_of_results(store, root, relpath):
    make_job(store)
    write_results(store, "my-job", {"a.tsv": "1", "sub/b.tsv": "2"})
    (root / "x").write_text("outside the job")
    with pytest.raises((InvalidInput, JobNotFound)):
        store.result_path("my-job", relpath)


@pytest.mark.parametrize("relpath", ["/etc/passwd", "/", "a.tsv\x00", "\x00"])
def test_result_path_refuses_absolute_paths_and_nul(store, relpath):
    make_job(store)
    write_results(store, "my-job", {"a.tsv": "1"})
    with pytest.raises(InvalidInput, match="invalid result file name"):
        store.result_path("my-job", relpath)


def test_result_path_refuses_a_symlink_pointing_outside(store, root, tmp_path):
    make_job(store)
    write_results(store, "my-job", {"a.tsv": "1"})
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    secret_dir = tmp_path / "secret-dir"
    secret_dir.mkdir()
    (secret_dir / "s.txt").write_text("secret")
    (root / "my-job" / "results" / "link.txt").symlink_to(secret)
    (root / "my-job" / "results" / "link-dir").symlink_to(secret_dir)
    for relpath in ("link.txt", "link-dir/s.txt"):
        with pytest.raises(InvalidInput, match="leads out of the job folder"):
            store.result_path("my-job", relpath)
    with pytest.raises(InvalidInput):
        store.read_result_json("my-job", "link.txt")


def test_job_info(store):
    make_job(store)
    with pytest.raises(JobNotFound, match=r"has no job_info\.json"):
        store.read_job_info("my-job")
    store.write_job_info("my-job", {"genes": 2, "when": Path("/x"), "nested": {"a": [1]}})
    assert store.read_job_info("my-job") == {"genes": 2, "when": "/x", "nested": {"a": [1]}}
    assert dot_entries(store.job_path("my-job")) == []


# --- delete_job ------------------------------------------------------------------------------


@pytest.mark.parametrize("confirm", ["", "other-job", "MY-JOB", "my-job ", "yes"])
def test_delete_job_requires_confirm_equal_to_the_name(store, root, confirm):
    make_job(store)
    write_results(store, "my-job", {"a.tsv": "1"})
    before = snapshot(root)
    with pytest.raises(InvalidInput) as exc:
        store.delete_job("my-job", confirm=confirm)
    assert "confirm='my-job'" in str(exc.value)
    assert snapshot(root) == before


def test_delete_job_removes_the_folder_whole(store, root):
    make_job(store)
    make_job(store, "other-job")
    write_results(store, "my-job", {"a.tsv": "1"})
    store.delete_job("my-job", confirm="my-job")
    assert os.listdir(root) == ["other-job"]
    assert not store.exists("my-job")


def test_delete_a_missing_job(store):
    with pytest.raises(JobNotFound):
        store.delete_job("no-such-job", confirm="no-such-job")


# --- path safety -----------------------------------------------------------------------------

BAD_NAMES = [
    "../escape",
    "..",
    ".",
    "a/b",
    "/abs",
    "/tmp",
    "a\\b",
    "..\\x",
    "a\x00b",
    "BadName",
    "a b",
    "",
    "ab",
    "x" * 64,
    "-ab",
    "ab-",
    "a--b",
    "аbc",  # Cyrillic 'а'
    ".staging-x",
    123,
    None,
]


def _config(name):
    return JobConfig.model_construct(jobname=name)


def _staging(store, name):
    with store.staging_results(name) as staging:
        (staging / "x").write_text("x")


CALLS = {
    "job_path": lambda s, n: s.job_path(n),
    "exists": lambda s, n: s.exists(n),
    "create_job": lambda s, n: s.create_job(_config(n), ["A"]),
    "create_job_replace": lambda s, n: s.create_job(_config(n), ["A"], ["B"], replace=True),
    "delete_job": lambda s, n: s.delete_job(n, confirm=n),
    "read_config": lambda s, n: s.read_config(n),
    "write_config": lambda s, n: s.write_config(_config(n)),
    "read_genes": lambda s, n: s.read_genes(n),
    "read_negatives": lambda s, n: s.read_negatives(n),
    "read_status": lambda s, n: s.read_status(n),
    "write_status": lambda s, n: s.write_status(JobStatus.model_construct(jobname=n)),
    "update_status": lambda s, n: s.update_status(n, State.RUNNING, "x"),
    "log_path": lambda s, n: s.log_path(n),
    "log_handler": lambda s, n: s.log_handler(n),
    "read_log": lambda s, n: s.read_log(n),
    "staging_results": _staging,
    "has_results": lambda s, n: s.has_results(n),
    "discard_results": lambda s, n: s.discard_results(n),
    "list_results": lambda s, n: s.list_results(n),
    "result_path": lambda s, n: s.result_path(n, "a.tsv"),
    "read_result_json": lambda s, n: s.read_result_json(n, "a.json"),
    "write_job_info": lambda s, n: s.write_job_info(n, {"a": 1}),
    "read_job_info": lambda s, n: s.read_job_info(n),
}


@pytest.mark.parametrize("method", list(CALLS))
def test_a_bad_name_is_refused_and_creates_nothing(tmp_path, root, method):
    store = ResultsFileStore(root)
    make_job(store)
    write_results(store, "my-job", {"a.tsv": "1", "a.json": "{}"})
    (tmp_path / "outside").mkdir()
    before = snapshot(tmp_path)
    # non-string names with update_status: see the test below
    names = [n for n in BAD_NAMES if isinstance(n, str)] if method == "update_status" else BAD_NAMES
    for name in names:
        with pytest.raises(InvalidInput, match="job name"):
            CALLS[method](store, name)
        assert snapshot(tmp_path) == before, f"{method}({name!r}) changed the files"


@pytest.mark.parametrize("name", [123, None])
def test_update_status_refuses_a_non_string_name_as_invalid_input(store, root, name):
    with pytest.raises(InvalidInput, match="job name must be a string"):
        store.update_status(name, State.RUNNING, "x")
    assert os.listdir(root) == []


@pytest.fixture
def linked_job(tmp_path, root):
    """`evil-job` in the jobs folder is a symlink to a real job folder outside it."""
    (tmp_path / "elsewhere").mkdir()
    other = ResultsFileStore(tmp_path / "elsewhere")
    make_job(other, "evil-job", negatives=["N"])
    write_results(other, "evil-job", {"a.tsv": "1", "a.json": "{}"})
    outside = tmp_path / "elsewhere" / "evil-job"
    (root / "evil-job").symlink_to(outside, target_is_directory=True)
    return outside


LINKED_CALLS = {
    "job_path": lambda s: s.job_path("evil-job"),
    "exists": lambda s: s.exists("evil-job"),
    "read_status": lambda s: s.read_status("evil-job"),
    "create_job_replace": lambda s: s.create_job(JobConfig(jobname="evil-job"), ["A"], replace=True),
    "create_job": lambda s: s.create_job(JobConfig(jobname="evil-job"), ["A"]),
    "update_status": lambda s: s.update_status("evil-job", State.FAILED, "x"),
    "write_config": lambda s: s.write_config(JobConfig(jobname="evil-job", num_nodes=9)),
    "read_genes": lambda s: s.read_genes("evil-job"),
    "delete_job": lambda s: s.delete_job("evil-job", confirm="evil-job"),
    "discard_results": lambda s: s.discard_results("evil-job"),
    "staging_results": lambda s: _staging(s, "evil-job"),
    "write_job_info": lambda s: s.write_job_info("evil-job", {"a": 1}),
    "log_handler": lambda s: s.log_handler("evil-job"),
    "result_path": lambda s: s.result_path("evil-job", "a.tsv"),
}


@pytest.mark.parametrize("method", list(LINKED_CALLS))
def test_a_job_folder_linking_outside_is_refused(store, root, linked_job, method):
    outside_before = snapshot(linked_job.parent)
    root_before = snapshot(root)
    with pytest.raises(InvalidInput) as exc:
        LINKED_CALLS[method](store)
    assert "leads out of the jobs folder" in str(exc.value)
    assert snapshot(linked_job.parent) == outside_before
    assert snapshot(root) == root_before
    assert store.list_jobs() == []


@pytest.mark.parametrize(
    "method", ["read_status", "update_status", "write_status", "status_snapshot", "restore_status"]
)
def test_a_status_file_linking_outside_is_refused(store, root, tmp_path, method):
    make_job(store)
    outside = tmp_path / "outside-status.json"
    outside.write_text(JobStatus.new("my-job").model_dump_json())
    before = outside.read_bytes()
    status_file = root / "my-job" / "status.json"
    status_file.unlink()
    status_file.symlink_to(outside)
    call = {
        "read_status": lambda: store.read_status("my-job"),
        "update_status": lambda: store.update_status("my-job", State.RUNNING, "x"),
        "write_status": lambda: store.write_status(JobStatus.new("my-job")),
        "status_snapshot": lambda: store.status_snapshot("my-job"),
        "restore_status": lambda: store.restore_status("my-job", b"{}"),
    }[method]
    with pytest.raises(InvalidInput) as exc:
        call()
    assert "status.json in job my-job leads out of the job folder" in str(exc.value)
    assert outside.read_bytes() == before
    assert status_file.is_symlink()
    assert dot_entries(root / "my-job") == []


@pytest.mark.parametrize(
    ("filename", "call"),
    [
        ("job_config.json", lambda s: s.read_config("my-job")),
        ("job_config.json", lambda s: s.write_config(JobConfig(jobname="my-job"))),
        ("input_genes.txt", lambda s: s.read_genes("my-job")),
        ("input_negatives.txt", lambda s: s.read_negatives("my-job")),
        ("job.log", lambda s: s.log_handler("my-job")),
        ("job_info.json", lambda s: s.write_job_info("my-job", {"a": 1})),
        ("job_info.json", lambda s: s.read_job_info("my-job")),
        ("results", lambda s: s.list_results("my-job")),
    ],
)
def test_other_files_linking_outside_are_refused(store, root, tmp_path, filename, call):
    make_job(store, negatives=["N"])
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / filename
    if filename == "results":
        target.mkdir()
        (target / "a.tsv").write_text("1")
    else:
        target.write_text("A\n")
    link = root / "my-job" / filename
    if link.exists():
        link.unlink()
    link.symlink_to(target)
    before = snapshot(outside)
    with pytest.raises(InvalidInput, match="leads out of the job folder"):
        call(store)
    assert snapshot(outside) == before
