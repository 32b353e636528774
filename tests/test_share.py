"""mljob.tools.share and `mljob share upload`, against FakeAzureFilesServer (a FAKE: no Azure Files emulator exists)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fake_azure_files import DEV_KEY, FakeAzureFilesServer  # tests/fake_azure_files.py

from mljob.errors import InvalidInput, JobNotFound, SettingsError
from mljob.job import new_jobname, parse_config
from mljob.results_store import ResultsFileStore
from mljob.tools.share import (
    PARTIAL_SUFFIX,
    ShareUnreachable,
    UploadFailed,
    redact,
    share_path,
    submit_to_share,
    upload,
    upload_job,
)

REPO = Path(__file__).resolve().parent.parent
SHARE = "geneplexus"
FAST = {"retry_backoff": 0.01, "progress": False}  # quick SDK and per-file retries in tests


@pytest.fixture
def fake():
    with FakeAzureFilesServer() as server:
        server.create_share(SHARE)
        yield server


def local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def under(files: dict[str, bytes], prefix: str) -> dict[str, bytes]:
    return {k[len(prefix) + 1 :]: v for k, v in files.items() if k.startswith(prefix + "/")}


def up(fake: FakeAzureFilesServer, src: Path, dest: str, **kwargs):
    return upload(src, dest, connection_string=fake.connection_string, share_name=SHARE, **{**FAST, **kwargs})


# --- directories, contents, skipping ---------------------------------------------------------


def test_nested_directories_are_created_parents_first(fake, tmp_path):
    src = tmp_path / "tree"
    (src / "a" / "b" / "c").mkdir(parents=True)
    (src / "a" / "b" / "c" / "deep.txt").write_text("deep\n")
    (src / "a" / "top.txt").write_text("top\n")
    (src / "empty").mkdir()

    report = up(fake, src, "x/y")

    assert report.ok and report.uploaded == 2
    assert {"x", "x/y", "x/y/a", "x/y/a/b", "x/y/a/b/c", "x/y/empty"} <= fake.directories(SHARE)
    assert under(fake.files(SHARE), "x/y") == {"a/b/c/deep.txt": b"deep\n", "a/top.txt": b"top\n"}
    created = [r.path.split("/", 1)[1] for r in fake.requests if r.kind == "create_directory"]
    for i, path in enumerate(created):  # every parent before its child
        parent = path.rpartition("/")[0]
        assert not parent or parent in created[:i]
    # a second run finds the directories there (409 is fine) and skips the files
    again = up(fake, src, "x/y")
    assert again.ok and again.skipped == 2 and again.uploaded == 0


def test_synthetic_data_folder_is_uploaded_byte_identical(fake, data_path):
    expected = local_files(data_path)

    report = up(fake, data_path, "data", workers=4)

    assert report.ok, report.failed
    assert report.uploaded == len(expected) and report.skipped == 0
    assert report.bytes_uploaded == sum(len(v) for v in expected.values())
    stored = fake.files(SHARE)
    assert under(stored, "data") == expected
    assert not [p for p in stored if p.endswith(PARTIAL_SUFFIX)]
    kinds = fake.kinds()
    assert kinds[0] == "get_share_properties"
    assert set(kinds) == {
        "get_share_properties",
        "create_directory",
        "get_file_properties",
        "create_file",
        "put_range",
        "rename_file",
    }
    assert kinds.count("rename_file") == len(expected)


def test_second_run_skips_files_of_the_same_size(fake, data_path):
    up(fake, data_path, "data")
    fake.clear_log()

    report = up(fake, data_path, "data")

    assert report.ok and report.uploaded == 0 and report.skipped == len(local_files(data_path))
    assert report.bytes_uploaded == 0
    assert "create_file" not in fake.kinds() and "put_range" not in fake.kinds()


def test_a_file_whose_size_changed_is_uploaded_again(fake, data_path, tmp_path):
    src = tmp_path / "data"
    shutil.copytree(data_path, src)
    up(fake, src, "data")
    changed = src / "NodeOrder__Human__STRING.txt"
    changed.write_text(changed.read_text() + "99999999\n")

    report = up(fake, src, "data")

    assert report.ok and report.uploaded == 1 and report.skipped == len(local_files(src)) - 1
    assert fake.files(SHARE)["data/NodeOrder__Human__STRING.txt"] == changed.read_bytes()
    # --overwrite uploads everything
    assert up(fake, src, "data", overwrite=True).uploaded == len(local_files(src))


def test_a_single_file_becomes_the_file_dest(fake, tmp_path):
    (tmp_path / "genes.txt").write_bytes(b"CDK1\nCCNB1\n")
    report = up(fake, tmp_path / "genes.txt", "inbox/today/genes.txt")
    assert report.ok and fake.files(SHARE) == {"inbox/today/genes.txt": b"CDK1\nCCNB1\n"}


def test_large_file_in_several_ranges(fake, tmp_path):
    big = tmp_path / "big.npy"
    big.write_bytes(os.urandom(9 * 1024 * 1024 + 7))  # 3 ranges of at most 4 MiB
    assert up(fake, big, "data/big.npy").ok
    assert fake.files(SHARE)["data/big.npy"] == big.read_bytes()
    ranges = [r.headers.get("x-ms-range") or r.headers.get("range") for r in fake.requests if r.kind == "put_range"]
    assert ranges == ["bytes=0-4194303", "bytes=4194304-8388607", "bytes=8388608-9437190"]


def test_empty_file(fake, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "empty.txt").write_bytes(b"")
    assert up(fake, tmp_path / "d", "d").uploaded == 1
    assert fake.files(SHARE) == {"d/empty.txt": b""}
    assert up(fake, tmp_path / "d", "d").skipped == 1


# --- transient errors ------------------------------------------------------------------------


def test_503_is_retried_by_the_sdk(fake, data_path):
    fake.fail_next(2, status=503, match=lambda r: r.kind == "put_range")

    report = up(fake, data_path, "data")

    assert report.ok and report.uploaded == len(local_files(data_path))
    assert under(fake.files(SHARE), "data") == local_files(data_path)
    ranges = [r for r in fake.requests if r.kind == "put_range"]
    failed = [r for r in ranges if r.status == 503]
    assert len(failed) == 2
    for bad in failed:  # each refused range was sent again and accepted
        assert any(r.path == bad.path and r.status == 201 for r in ranges)


def test_a_file_is_retried_whole_when_the_sdk_gives_up(fake, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.bin").write_bytes(b"x" * 1000)
    # retry_total=1: the SDK tries twice, so 3 failures defeat its first attempt and one of the next
    fake.fail_next(3, status=503, match=lambda r: r.kind == "put_range")

    report = up(fake, tmp_path / "d", "d", retry_total=1, file_retries=2)

    assert report.ok and report.retries == 1
    assert fake.files(SHARE)["d/f.bin"] == b"x" * 1000


def test_persistent_failure_is_reported_and_status_json_is_held_back(fake, tmp_path):
    (tmp_path / "jobs").mkdir()
    store = ResultsFileStore(tmp_path / "jobs")
    name = new_jobname("web")
    store.create_job(parse_config({"jobname": name}), ["CDK1", "CCNB1"])
    fake.fail_next(100, status=500, code="InternalError", match=lambda r: r.path.endswith("/input_genes.txt"))

    report = up(fake, tmp_path / "jobs" / name, f"jobs/{name}", retry_total=1, file_retries=1)

    assert not report.ok
    failed = dict(report.failed)
    assert set(failed) == {f"jobs/{name}/input_genes.txt", f"jobs/{name}/status.json"}
    assert "InternalError" in failed[f"jobs/{name}/input_genes.txt"] or "500" in failed[f"jobs/{name}/input_genes.txt"]
    assert "other files failed" in failed[f"jobs/{name}/status.json"]
    assert f"jobs/{name}/status.json" not in fake.files(SHARE)
    assert f"jobs/{name}/input_genes.txt" not in fake.files(SHARE)  # never half there under its name


def test_a_failed_file_leaves_no_temporary_file(fake, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.bin").write_bytes(b"a" * 100)
    (tmp_path / "d" / "b.bin").write_bytes(b"b" * 100)
    fake.fail_next(100, status=500, match=lambda r: r.kind == "put_range" and "a.bin" in r.path)

    report = up(fake, tmp_path / "d", "d", retry_total=1, file_retries=1)

    assert report.failed and report.failed[0][0] == "d/a.bin" and report.uploaded == 1
    assert fake.files(SHARE) == {"d/b.bin": b"b" * 100}
    assert "delete_file" in fake.kinds()


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("dest", ["..", "../x", "data/../../x", "/data", "\\data", "C:/data", "", "a/b:c", "a\\b"])
def test_bad_dest_is_refused_before_any_request(fake, data_path, dest):
    with pytest.raises(InvalidInput):
        up(fake, data_path, dest)
    assert fake.requests == []


def test_share_path_normalises_harmless_forms():
    assert share_path("data/") == ["data"]
    assert share_path("./jobs//x") == ["jobs", "x"]


def test_missing_share_and_missing_source(fake, data_path, tmp_path):
    with pytest.raises(SettingsError, match="share 'nope' does not exist"):
        upload(data_path, "data", connection_string=fake.connection_string, share_name="nope", progress=False)
    with pytest.raises(InvalidInput, match="does not exist"):
        up(fake, tmp_path / "absent", "data")


def test_azurite_connection_string_is_refused_with_a_reason(data_path):
    azurite = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
        "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    )
    with pytest.raises(SettingsError, match="Azurite has no Azure Files") as info:
        upload(data_path, "data", connection_string=azurite, share_name=SHARE, progress=False)
    assert DEV_KEY not in str(info.value)


def test_unreachable_endpoint(data_path, monkeypatch):
    from azure.core.pipeline.transport import RequestsTransport

    # Record what the SDK was asked to do instead of timing it: every request sent, every backoff slept.
    sent: list[str] = []
    slept: list[float] = []
    send, sleep = RequestsTransport.send, RequestsTransport.sleep

    def counting_send(self, request, **kwargs):
        sent.append(f"{request.method} {request.url}")
        return send(self, request, **kwargs)

    def recording_sleep(self, duration):
        slept.append(duration)
        return sleep(self, duration)

    monkeypatch.setattr(RequestsTransport, "send", counting_send)
    monkeypatch.setattr(RequestsTransport, "sleep", recording_sleep)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cs = f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={DEV_KEY};FileEndpoint=http://127.0.0.1:{port}/acct;"
    with pytest.raises(ShareUnreachable, match="cannot reach") as info:
        upload(data_path, "data", connection_string=cs, share_name=SHARE, retry_total=1, **FAST)
    # It fails fast by design, not by the machine's speed: the first request (the share check) is tried
    # retry_total + 1 = 2 times with one short backoff in between (the SDK counts that first retry as 1,
    # so it is 2 x retry_backoff, ±25%), and nothing else is attempted.
    assert len(sent) == 2 and all(call.startswith("GET ") and "restype=share" in call for call in sent), sent
    assert len(slept) == 1 and 0 < slept[0] <= 2 * FAST["retry_backoff"] * 1.25, slept
    assert DEV_KEY not in str(info.value)


def test_redact_removes_keys_and_signatures():
    text = "AccountKey=abc/def==; url https://a.file.core.windows.net/s/f?sv=1&sig=SECRET%2B&se=2 key abc/def=="
    out = redact(text, ["abc/def=="])
    assert "abc/def" not in out and "SECRET" not in out


# --- jobs ------------------------------------------------------------------------------------


def test_upload_job_puts_a_created_job_on_the_share(fake, tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    store = ResultsFileStore(jobs)
    name = new_jobname("mygenes")
    store.create_job(parse_config({"jobname": name, "sp_res": ["Human", "Mouse"]}), ["CDK1", "CCNB1", "CDC20"])

    report = upload_job(jobs, name, connection_string=fake.connection_string, share_name=SHARE, retry_backoff=0.01)

    assert report.ok and report.dest == f"jobs/{name}"
    assert under(fake.files(SHARE), f"jobs/{name}") == local_files(jobs / name)
    renames = [r.path for r in fake.requests if r.kind == "rename_file"]
    assert renames[-1] == f"{SHARE}/jobs/{name}/status.json"  # the status comes last
    with pytest.raises(JobNotFound):
        upload_job(jobs, "nosuchjob", connection_string=fake.connection_string, share_name=SHARE)
    with pytest.raises(InvalidInput):
        upload_job(jobs, "../etc", connection_string=fake.connection_string, share_name=SHARE)


def test_upload_job_raises_when_incomplete(fake, tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    name = new_jobname()
    ResultsFileStore(jobs).create_job(parse_config({"jobname": name}), ["CDK1"])
    fake.fail_next(100, status=403, code="AuthorizationFailure", match=lambda r: r.path.endswith("job_config.json"))
    with pytest.raises(UploadFailed, match="not uploaded completely") as info:
        upload_job(jobs, name, connection_string=fake.connection_string, share_name=SHARE, retry_backoff=0.01)
    assert not info.value.report.ok


def test_submit_to_share_creates_the_job_there(fake):
    name = submit_to_share(
        "CDK1\nCCNB1\nCDC20\n",
        {"net_type": "BioGRID"},
        prefix="web",
        connection_string=fake.connection_string,
        share_name=SHARE,
        retry_backoff=0.01,
    )
    files = under(fake.files(SHARE), f"jobs/{name}")
    assert name.startswith("web-")
    assert set(files) == {"job_config.json", "input_genes.txt", "status.json"}
    assert files["input_genes.txt"] == b"CDK1\nCCNB1\nCDC20\n"
    assert b'"BioGRID"' in files["job_config.json"]
    with pytest.raises(InvalidInput):
        submit_to_share("", {}, connection_string=fake.connection_string, share_name=SHARE)


# --- the command line ------------------------------------------------------------------------


def mljob(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "QUEUECONNECTIONSTRING"}
    return subprocess.run(
        [sys.executable, "-m", "mljob", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
    )


def test_cli_share_upload_end_to_end(fake, data_path):
    env = {"QUEUECONNECTIONSTRING": fake.connection_string}
    first = mljob("share", "upload", str(data_path), "data", "--share", SHARE, "--workers", "3", env=env)
    assert first.returncode == 0, first.stderr
    n = len(local_files(data_path))
    assert f"{n} uploaded" in first.stdout and "0 failed" in first.stdout
    assert under(fake.files(SHARE), "data") == local_files(data_path)

    second = mljob("share", "upload", str(data_path), "data", "--share", SHARE, "--no-progress", env=env)
    assert second.returncode == 0 and f"{n} skipped" in second.stdout and "0 uploaded" in second.stdout

    # the connection string on the command line works too
    third = mljob("share", "upload", str(data_path), "data2", "--share", SHARE, "--connection-string",
                  fake.connection_string)  # fmt: skip
    assert third.returncode == 0, third.stderr
    for result in (first, second, third):
        out = result.stdout + result.stderr
        assert DEV_KEY not in out and "AccountKey" not in out and DEV_KEY[:20] not in out


def test_cli_share_upload_failures_exit_1_with_the_list(fake, data_path):
    fake.fail_next(100, status=403, code="AuthorizationPermissionMismatch", match=lambda r: "IDconversion" in r.path)
    env = {"QUEUECONNECTIONSTRING": fake.connection_string}
    result = mljob("share", "upload", str(data_path), "data", "--share", SHARE, "--no-progress", env=env)
    assert result.returncode == 1
    listed = [line.strip().split(":")[0] for line in result.stderr.splitlines() if line.startswith("  ")]
    assert listed and all("IDconversion" in path for path in listed)
    assert DEV_KEY not in result.stdout + result.stderr


def test_cli_share_upload_usage_errors_exit_2(fake, data_path):
    env = {"QUEUECONNECTIONSTRING": fake.connection_string}
    no_share = mljob("share", "upload", str(data_path), "data", env=env)
    assert no_share.returncode == 2 and "--share" in no_share.stderr
    no_cs = mljob("share", "upload", str(data_path), "data", "--share", SHARE)
    assert no_cs.returncode == 2 and "QUEUECONNECTIONSTRING is not set" in no_cs.stderr
    dotdot = mljob("share", "upload", str(data_path), "../data", "--share", SHARE, env=env)
    assert dotdot.returncode == 2 and "'..'" in dotdot.stderr
    missing = mljob("share", "upload", str(data_path), "data", "--share", "other", env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad_cs = mljob("share", "upload", str(data_path), "data", "--share", SHARE, env={"QUEUECONNECTIONSTRING": "junk"})
    assert bad_cs.returncode == 2 and "malformed" in bad_cs.stderr
    assert not fake.files(SHARE)
    for result in (no_share, no_cs, dotdot, missing):
        assert len(result.stderr.strip().splitlines()) == 1
        assert DEV_KEY not in result.stdout + result.stderr
