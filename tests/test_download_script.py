"""scripts/download_data_for_geneplexus.py, offline: no test reaches the internet.

"Offline" is made certain by pointing HTTP(S)_PROXY at a closed loopback port, so the result is the
same on a machine with a network. The successful path runs in-process against a local stand-in for
Zenodo (geneplexus' URL_DICT pointed at it) that serves a tar.gz of synthetic data.
"""

from __future__ import annotations

import importlib.util
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mljob.tools.synthetic_data import make_backend_data

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "download_data_for_geneplexus.py"
PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_script(*args: str, tmp_path: Path, offline: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS and k != "DATA_PATH"}
    env["PYSTOW_HOME"] = str(tmp_path / "pystow")
    if offline:
        proxy = f"http://127.0.0.1:{closed_port()}"
        env.update(HTTP_PROXY=proxy, HTTPS_PROXY=proxy, ALL_PROXY=proxy)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path
    )


# --- offline, bad usage, --check ---------------------------------------------------------------


def test_offline_fails_at_once_with_one_line(tmp_path, script, monkeypatch):
    dest = tmp_path / "data"
    result = run_script("--data-path", str(dest), "--species", "Human,Mouse", tmp_path=tmp_path)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot reach Zenodo to download GenePlexus data (no network?)" in lines[0]
    assert "complete" not in result.stdout
    # "at once" is what the script decides, not how fast the machine is: its one probe got an answer (the
    # refused connection) rather than waiting out its deadline ...
    assert "Connection refused" in lines[0] and "no answer" not in lines[0], lines[0]
    # nothing was written, and nothing is reported complete afterwards
    assert not dest.exists() or not any(dest.iterdir())
    check = run_script("--check", "--data-path", str(dest), tmp_path=tmp_path)
    assert check.returncode == 1

    # ... and, in this process, counted: one probe for both species, and geneplexus's download (which
    # retries with waits in between) is never started.
    import geneplexus.download as gpd

    probes: list[str] = []
    downloads: list[tuple] = []
    real_probe = script.probe

    def counting_probe(url: str, *args, **kwargs):
        probes.append(url)
        return real_probe(url, *args, **kwargs)

    monkeypatch.setattr(script, "probe", counting_probe)
    monkeypatch.setattr(gpd, "download_select_data", lambda *args, **kwargs: downloads.append(args))
    for var in PROXY_VARS | {v.upper() for v in PROXY_VARS}:
        monkeypatch.delenv(var, raising=False)
    proxy = f"http://127.0.0.1:{closed_port()}"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(var, proxy)
    assert script.main(["--data-path", str(dest), "--species", "Human,Mouse"]) == 1
    assert probes == [gpd.URL_DICT["ZenodoAPI"]] and downloads == []


def test_offline_does_not_touch_an_interrupted_download(tmp_path):
    dest = tmp_path / "data"
    make_backend_data(dest, species=["Human"])
    (dest / ".mljob-download-Human.incomplete").write_text("started\n")

    result = run_script("--data-path", str(dest), tmp_path=tmp_path)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    check = run_script("--check", "--data-path", str(dest), tmp_path=tmp_path)
    assert check.returncode == 1
    assert "interrupted" in check.stdout and ".mljob-download-Human.incomplete" in check.stdout
    assert (dest / "data_filenames_Human.txt").exists()


def test_complete_species_are_skipped_without_network(tmp_path):
    dest = tmp_path / "data"
    make_backend_data(dest)  # Human + Mouse, with their data_filenames files
    result = run_script("--data-path", str(dest), "--species", "Mouse,Human", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Mouse: already complete" in result.stderr and "Human: already complete" in result.stderr
    assert "complete: Mouse, Human" in result.stdout


def test_check_complete_synthetic_data(data_path, tmp_path):
    result = run_script("--check", "--data-path", str(data_path), "--species", "Human,Mouse", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Human: complete" in result.stdout and "Mouse: complete" in result.stdout


def test_check_uses_data_path_from_the_environment(data_path, tmp_path):
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}
    env.update(DATA_PATH=str(data_path), PYSTOW_HOME=str(tmp_path / "pystow"))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0 and "Human: complete" in result.stdout


def test_check_incomplete_names_the_missing_file(tmp_path):
    dest = tmp_path / "data"
    make_backend_data(dest)
    (dest / "Data__Mouse__SixSpeciesN2V__IMP.npy").unlink()

    result = run_script("--check", "--data-path", str(dest), "--species", "Human,Mouse", tmp_path=tmp_path)

    assert result.returncode == 1
    assert "Human: complete" in result.stdout
    assert "Mouse: INCOMPLETE" in result.stdout and "Data__Mouse__SixSpeciesN2V__IMP.npy" in result.stdout


def test_check_of_a_folder_that_does_not_exist(tmp_path):
    result = run_script("--check", "--data-path", str(tmp_path / "nope"), tmp_path=tmp_path)
    assert result.returncode == 1 and "no such folder" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--species", "Dog"],
        ["--species", "Human,Unicorn"],
        ["--species", ""],
        ["--retries", "0"],
        ["--bogus"],
    ],
)
def test_bad_usage_exits_2(tmp_path, args):
    result = run_script("--data-path", str(tmp_path / "data"), *args, tmp_path=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_no_data_path_exits_2(tmp_path):
    result = run_script("--check", tmp_path=tmp_path)
    assert result.returncode == 2 and "DATA_PATH" in result.stderr


# --- the download itself, against a local stand-in for Zenodo --------------------------------


class FakeZenodo:
    """Serves {Species}_data.tar.gz/content like Zenodo's API (anything else: a small JSON)."""

    def __init__(self) -> None:
        self.archives: dict[str, bytes] = {}
        self.hits: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                fake.hits.append(self.path)
                name = self.path.rstrip("/").removesuffix("/content").rsplit("/", 1)[-1]
                body = fake.archives.get(name, b'{"entries": []}')
                self.send_response(200 if name in fake.archives or not name.endswith(".tar.gz") else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/records/14750555/files/"

    def downloads(self, species: str) -> int:
        return sum(1 for p in self.hits if f"{species}_data.tar.gz" in p)


def make_archive(src: Path, species: str, leave_out: str | None = None) -> bytes:
    """A tar.gz like Zenodo's: the species' files inside a {species}_data/ folder."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        folder = tarfile.TarInfo(f"{species}_data")
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o755
        tar.addfile(folder)
        for path in sorted(src.iterdir()):
            if path.name != leave_out and species in path.name:
                tar.add(path, arcname=f"{species}_data/{path.name}")
    return buf.getvalue()


@pytest.fixture
def zenodo(monkeypatch) -> Iterator[FakeZenodo]:
    import geneplexus.download as gpd

    server = FakeZenodo()
    server.thread.start()
    monkeypatch.setitem(gpd.URL_DICT, "ZenodoAPI", server.base)
    for var in PROXY_VARS | {v.upper() for v in PROXY_VARS}:
        monkeypatch.delenv(var, raising=False)
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def script():
    spec = importlib.util.spec_from_file_location("download_data_for_geneplexus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def human_source(tmp_path) -> Path:
    src = tmp_path / "source"
    make_backend_data(src, species=["Human"])
    return src


def test_download_verify_and_restart(zenodo, script, human_source, tmp_path, capsys):
    zenodo.archives["Human_data.tar.gz"] = make_archive(human_source, "Human")
    dest = tmp_path / "data"

    assert script.main(["--data-path", str(dest), "--retries", "1"]) == 0
    listed = (human_source / "data_filenames_Human.txt").read_text().split()
    for name in listed:
        assert (dest / name).read_bytes() == (human_source / name).read_bytes()
    assert not (dest / ".mljob-download-Human.incomplete").exists()
    assert not (dest / "Human_data").exists()
    assert script.missing(dest, "Human") == []
    assert zenodo.downloads("Human") == 1
    out = capsys.readouterr()
    assert "complete: Human" in out.out and f"Human: complete ({len(listed)} files)" in out.err

    # a second run finds it complete: no request at all
    hits = len(zenodo.hits)
    assert script.main(["--data-path", str(dest)]) == 0
    assert len(zenodo.hits) == hits

    # an interrupted run (marker left behind) is fetched again, though every file is present
    (dest / ".mljob-download-Human.incomplete").write_text("started\n")
    (dest / "NodeOrder__Human__IMP.txt").write_text("half")  # a half-unpacked file
    assert script.check(dest, ["Human"]) == 1
    assert script.main(["--data-path", str(dest), "--retries", "1"]) == 0
    assert zenodo.downloads("Human") == 2
    assert (dest / "NodeOrder__Human__IMP.txt").read_bytes() == (
        human_source / "NodeOrder__Human__IMP.txt"
    ).read_bytes()
    assert script.check(dest, ["Human"]) == 0


def test_an_archive_missing_a_file_is_reported_never_complete(zenodo, script, human_source, tmp_path, capsys):
    zenodo.archives["Human_data.tar.gz"] = make_archive(human_source, "Human", leave_out="Edgelist__Human__IMP.edg")
    dest = tmp_path / "data"

    assert script.main(["--data-path", str(dest), "--retries", "2"]) == 1

    err = capsys.readouterr().err
    assert "cannot download the Human GenePlexus data" in err
    assert "the last try lacked 1 file(s): Edgelist__Human__IMP.edg" in err
    assert zenodo.downloads("Human") == 2  # geneplexus tried again
    assert script.missing(dest, "Human") == [".mljob-download-Human.incomplete", "Edgelist__Human__IMP.edg"]
    assert script.check(dest, ["Human"]) == 1
    assert "Edgelist__Human__IMP.edg" in capsys.readouterr().out
