"""The `mljob` command: exit codes, output, and nothing written on bad input.

Most tests call `mljob.tools.cli.main(argv)` in this process (it returns the exit code; argparse usage
errors raise SystemExit(2)), with the environment set by monkeypatch and the output captured by capsys:
the CLI reads its settings from the environment at call time, and the runner restores GenePlexus's
module-level state after every job, so many jobs can run in one process. A few tests run real
subprocesses where the process is the point: the `mljob` console script, the exit codes a shell sees
(through `python -m mljob`) and `python -m mljob.run_geneplexus`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mljob import __version__
from mljob.lease import RunLease
from mljob.results_store import ResultsFileStore
from mljob.tools.cli import main

REPO = Path(__file__).resolve().parent.parent
# The settings the CLI reads from the environment; every call starts without them unless it sets them.
SETTINGS_VARS = ("DATA_PATH", "JOBS_PATH", "QUEUECONNECTIONSTRING", "QUEUE_NAME")


@dataclass
class Result:
    """What one `mljob` command did: like subprocess.CompletedProcess, for in-process calls too."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module", autouse=True)
def _science_imported() -> None:
    """Import geneplexus before any test captures output.

    geneplexus's logger gets a StreamHandler bound to the sys.stderr of the moment it is first imported;
    if that were a test's capsys stream, it would be closed at the end of that test and every later
    GenePlexus log line would fail with "I/O operation on closed file".
    """
    import geneplexus  # noqa: F401


@pytest.fixture
def mljob(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run `mljob ARGS...` in this process: mljob(*args, env={...}, stdin="...") -> Result.

    Like a subprocess, each call sees the test's environment without the settings variables, plus `env`, and
    leaves the environment as it was (the CLI puts the values of ./local.settings.json into os.environ). The
    current folder is the test's tmp_path (no local.settings.json) unless the test changes to another one.
    """
    monkeypatch.chdir(tmp_path)  # not the checkout: a developer's local.settings.json there would be read

    def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
        capsys.readouterr()  # drop anything printed before this command
        before = dict(os.environ)
        with monkeypatch.context() as m:
            for name in SETTINGS_VARS:
                m.delenv(name, raising=False)
            for name, value in (env or {}).items():
                m.setenv(name, value)
            if stdin is not None:
                m.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: --version, --help and usage errors
                code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        os.environ.clear()
        os.environ.update(before)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def subprocess_env(env: dict[str, str] | None = None) -> dict[str, str]:
    full_env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARS}
    full_env["PYTHONPATH"] = str(REPO)
    full_env.update(env or {})
    return full_env


def snapshot(*roots: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for root in roots for p in root.rglob("*")}


@pytest.fixture
def env(data_path, jobs_path) -> dict[str, str]:
    return {"DATA_PATH": str(data_path), "JOBS_PATH": str(jobs_path)}


@pytest.fixture
def genes_file(tmp_path, demo_genes) -> Path:
    path = tmp_path / "genes.txt"
    path.write_text("\n".join(demo_genes) + "\n")
    return path


# --- real processes: the console script, the exit codes a shell sees, the runner module ----------


def test_console_script_version_submit_and_run(env, genes_file, jobs_path, tmp_path):
    """The installed `mljob` script itself: --version, and one real submit + run with its progress bar."""
    script = Path(sys.executable).with_name("mljob")
    assert script.is_file(), f"{script} is missing: `pip install -e .` installs the console script"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(script), *args], capture_output=True, text=True, env=subprocess_env(env), cwd=tmp_path, timeout=300
        )

    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"mljob {__version__}"

    submit = run("submit", str(genes_file), "--prefix", "My Genes!")
    assert submit.returncode == 0, submit.stderr
    name = submit.stdout.strip()
    assert submit.stdout == name + "\n" and name.startswith("my-genes-") and len(name) == len("my-genes-") + 8
    assert json.loads((jobs_path / name / "status.json").read_text())["status"] == "created"

    executed = run("run", name)
    assert executed.returncode == 0, executed.stderr
    assert f"{name}: completed (200)" in executed.stdout
    assert f"{name}: done" in executed.stderr and "100%" in executed.stderr  # the progress bar, on stderr


def test_exit_codes_as_a_shell_sees_them(mljob, env, genes_file, tmp_path):
    """0 ok, 1 the job failed, 2 bad input or usage: as `$?` after `python -m mljob ...`."""
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("\n".join(f"NOPE{i}" for i in range(30)))
    assert mljob("submit", str(genes_file), "--name", "ok-job", env=env).returncode == 0
    assert mljob("submit", str(unknown), "--name", "failed-job", env=env).returncode == 0
    assert mljob("run", "failed-job", "--quiet", env=env).returncode == 1
    script = "\n".join(
        f'"$PY" -m mljob {args} >/dev/null 2>&1; echo "{label}=$?"'
        for label, args in (
            ("ok", "status ok-job"),
            ("failed", "status failed-job"),
            ("bad", "status -- ../escape"),
            ("usage", "frobnicate"),
        )
    )
    shell = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        env=subprocess_env({**env, "PY": sys.executable}),
        cwd=tmp_path,
        timeout=300,
    )
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.split() == ["ok=0", "failed=1", "bad=2", "usage=2"]


def test_make_data_and_module_runner(mljob, tmp_path, demo_genes):
    data = tmp_path / "data"
    made = mljob("make-data", str(data), "--species", "Human", "--genes", "300", "--dim", "16")
    assert made.returncode == 0, made.stderr
    assert "SYNTHETIC" in (data / "README.md").read_text().upper()
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    genes = tmp_path / "g.txt"
    genes.write_text("\n".join(demo_genes))
    env = {"DATA_PATH": str(data), "JOBS_PATH": str(jobs)}
    assert mljob("submit", str(genes), "--name", "module-run", env=env).returncode == 0

    def module(jobname: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "mljob.run_geneplexus", jobname, str(jobs), str(data)]
        return subprocess.run(command, capture_output=True, text=True, env=subprocess_env(), cwd=REPO, timeout=300)

    run = module("module-run")
    assert run.returncode == 0, run.stderr
    assert "module-run: completed" in run.stdout and run.stderr == ""  # no warning from runpy either
    bad = module("../x")
    assert bad.returncode == 2 and "invalid job name" in bad.stderr


# --- in this process -----------------------------------------------------------------------------


def test_submit_prints_the_name_alone_then_run_status_results(mljob, env, genes_file, jobs_path):
    submit = mljob("submit", str(genes_file), "--prefix", "My Genes!", env=env)
    assert submit.returncode == 0, submit.stderr
    name = submit.stdout.strip()
    assert submit.stdout == name + "\n" and name.startswith("my-genes-") and len(name) == len("my-genes-") + 8
    assert json.loads((jobs_path / name / "status.json").read_text())["status"] == "created"

    run = mljob("run", name, env=env)
    assert run.returncode == 0, run.stderr
    assert f"{name}: completed (200)" in run.stdout

    status = mljob("status", name, "--json", env=env)
    assert status.returncode == 0 and json.loads(status.stdout)["status"] == "completed"
    results = mljob("results", name, "--top", "5", env=env)
    assert results.returncode == 0 and "top genes for Human-Combined" in results.stdout
    assert len(results.stdout.strip().splitlines()) == 1 + 1 + 5


def test_run_on_unknown_genes_exits_1_and_status_says_why(mljob, env, tmp_path, jobs_path):
    genes = tmp_path / "unknown.txt"
    genes.write_text("\n".join(f"NOPE{i}" for i in range(30)))
    submit = mljob("submit", str(genes), "--name", "all-unknown", env=env)
    assert submit.returncode == 0, submit.stderr
    run = mljob("run", "all-unknown", env=env)
    assert run.returncode == 1
    status = json.loads((jobs_path / "all-unknown" / "status.json").read_text())
    assert status["status"] == "failed" and "too few of your genes" in status["message"]
    assert "0 of your 30 genes" in status["message"]
    assert mljob("status", "all-unknown", env=env).returncode == 1


@pytest.mark.parametrize("bad", ["../escape", "UPPER", "a/b", "ab", "-lead", "trail-", "has space", "x" * 64, "é-job"])
def test_bad_job_name_exits_2_and_writes_nothing(mljob, env, genes_file, data_path, jobs_path, tmp_path, bad):
    before = snapshot(tmp_path, data_path)
    for args in (
        ["submit", str(genes_file), f"--name={bad}"],
        ["run", "--", bad],
        ["status", "--", bad],
        ["results", "--", bad],
    ):
        result = mljob(*args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "invalid job name" in result.stderr
        assert result.stdout == ""
    assert snapshot(tmp_path, data_path) == before


def test_usage_errors_are_one_line_exit_2(mljob, env, genes_file):
    for args in (
        ["submit", str(genes_file), "--net-type", "FOO"],
        ["frobnicate"],
        ["submit"],
        ["submit", str(genes_file), "--sp-res", "Human,Martian"],
    ):
        result = mljob(*args, env=env)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)


def test_bad_inputs_exit_2_without_a_job_folder(mljob, env, tmp_path, genes_file, jobs_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x00\x01\x02GENE")
    config = tmp_path / "params.yaml"
    config.write_text("net_type: BioGRID\nsp_trn: Zebrafish\n")
    cases = [
        (["submit", str(empty)], "empty"),
        (["submit", str(binary)], "binary"),
        (["submit", str(tmp_path / "missing.txt")], "does not exist"),
        (["submit", str(genes_file), "--config", str(config)], "Zebrafish"),
        (["submit", str(genes_file), "--callback-url", "ftp://example.org/x"], "callback_url"),
        (["run", "no-such-job"], "not found"),
    ]
    for args, words in cases:
        result = mljob(*args, env=env)
        assert result.returncode == 2 and words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert list(jobs_path.iterdir()) == []


def test_missing_settings_are_explained(mljob, tmp_path, genes_file):
    result = mljob("submit", str(genes_file))
    assert result.returncode == 2 and "JOBS_PATH is not set" in result.stderr
    result = mljob("run", "some-job", env={"JOBS_PATH": str(tmp_path / "nope"), "DATA_PATH": str(tmp_path)})
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_only_running_needs_data_path(mljob, genes_file, tmp_path):
    """Creating and reading job folders needs JOBS_PATH alone; run, submit --run and demo need DATA_PATH too."""
    jobs = tmp_path / "jobs-only"
    jobs.mkdir()
    env = {"JOBS_PATH": str(jobs)}
    submit = mljob("submit", str(genes_file), "--name", "no-data-yet", env=env)
    assert submit.returncode == 0 and submit.stdout == "no-data-yet\n", submit.stderr
    assert json.loads((jobs / "no-data-yet" / "status.json").read_text())["status"] == "created"
    for args in (["status", "no-data-yet"], ["list"], ["cleanup", "--older-than", "30"]):
        result = mljob(*args, env=env)
        assert result.returncode == 0 and "DATA_PATH" not in result.stderr, (args, result.stderr)
    assert "no-data-yet" in mljob("list", env=env).stdout
    results = mljob("results", "no-data-yet", env=env)  # not completed: its own error, not DATA_PATH's
    assert results.returncode == 2 and "DATA_PATH" not in results.stderr
    assert mljob("cancel", "no-data-yet", env=env).returncode == 0
    before = snapshot(jobs)
    for args in (["run", "no-data-yet"], ["submit", str(genes_file), "--name", "run-now", "--run"]):
        result = mljob(*args, env=env)
        assert result.returncode == 2 and "DATA_PATH is not set" in result.stderr, (args, result.stderr)
    assert snapshot(jobs) == before  # submit --run wrote nothing


def test_local_settings_json_in_the_current_folder_is_read(mljob, genes_file, tmp_path, monkeypatch):
    """Every command takes the "Values" of ./local.settings.json as `mljob serve` does; the environment wins."""
    from_file, from_env = tmp_path / "jobs-from-file", tmp_path / "jobs-from-env"
    from_file.mkdir()
    from_env.mkdir()
    folder = tmp_path / "app"
    folder.mkdir()
    values = {"JOBS_PATH": str(from_file), "MAX_INPUT_GENES": "5", "NOT_A_SETTING": "x"}
    (folder / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    monkeypatch.chdir(folder)
    monkeypatch.delenv("MAX_INPUT_GENES", raising=False)
    monkeypatch.delenv("NOT_A_SETTING", raising=False)

    too_many = mljob("submit", str(genes_file), "--name", "from-file")  # MAX_INPUT_GENES 5 from the file
    assert too_many.returncode == 2 and "the most accepted is 5" in too_many.stderr
    assert list(from_file.iterdir()) == []
    more = {"MAX_INPUT_GENES": "10000"}  # the environment wins over the file
    ok = mljob("submit", str(genes_file), "--name", "from-file", env=more)
    assert ok.returncode == 0, ok.stderr
    assert (from_file / "from-file" / "status.json").is_file()  # JOBS_PATH from the file
    assert "from-file" in mljob("list").stdout and mljob("status", "from-file").returncode == 0

    env_wins = mljob("submit", str(genes_file), "--name", "from-env", env={**more, "JOBS_PATH": str(from_env)})
    assert env_wins.returncode == 0, env_wins.stderr
    assert (from_env / "from-env").is_dir() and not (from_file / "from-env").exists()
    assert "NOT_A_SETTING" not in os.environ and "MAX_INPUT_GENES" not in os.environ  # the fixture cleans up

    (folder / "local.settings.json").write_text("{not json")
    broken = mljob("list", env={"JOBS_PATH": str(from_env)})
    assert broken.returncode == 2 and "local.settings.json" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1


def test_submit_with_yaml_config_and_run_flag(mljob, env, tmp_path, genes_file, jobs_path):
    config = tmp_path / "params.yaml"
    config.write_text("net_type: IMP\nsp_res: [Human, Mouse]\nnum_nodes: 10\n")
    result = mljob(
        "submit", str(genes_file), "--config", str(config), "--gsc-res", "GO", "--name", "yaml-job", "--run", env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "yaml-job\n" and "completed" in result.stderr
    saved = json.loads((jobs_path / "yaml-job" / "job_config.json").read_text())
    assert saved["net_type"] == "IMP" and saved["gsc_res"] == ["GO", "GO"] and saved["num_nodes"] == 10


def test_genes_from_stdin(mljob, env, demo_genes, jobs_path):
    result = mljob("submit", "-", "--name", "stdin-job", env=env, stdin=", ".join(demo_genes))
    assert result.returncode == 0 and result.stdout == "stdin-job\n"
    assert (jobs_path / "stdin-job" / "input_genes.txt").is_file()


def test_demo_runs_a_real_job_and_prints_top_genes(mljob, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = mljob("demo", "--workdir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout and "top genes for Human-Combined" in result.stdout
    assert "job folder:" in result.stdout
    folder = Path(result.stdout.split("job folder:")[1].strip().splitlines()[0])
    assert (folder / "results" / "top_genes.json").is_file()
    again = mljob("demo", "--workdir", str(tmp_path / "demo"))
    assert again.returncode == 0 and "making synthetic demo data" not in again.stderr


def test_enqueue_command_queues_jobs_all_or_nothing(mljob, env, genes_file, jobs_path, azurite):
    env = {**env, "QUEUECONNECTIONSTRING": azurite.connection_string, "QUEUE_NAME": "cli-enqueue-test"}
    assert mljob("submit", str(genes_file), "--name", "cli-queued", env=env).returncode == 0
    result = mljob("enqueue", "cli-queued", env=env)
    assert result.returncode == 0 and result.stdout == "cli-queued\n", result.stderr
    assert json.loads((jobs_path / "cli-queued" / "status.json").read_text())["status"] == "queued"
    again = mljob("enqueue", "cli-queued", "no-such-job", env=env)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    down = mljob(
        "enqueue",
        "cli-queued",
        "--rerun",
        env={**env, "QUEUECONNECTIONSTRING": env["QUEUECONNECTIONSTRING"].replace(str(azurite.queue_port), "9")},
    )
    # exit 3: a service it needs could not be reached (not bad input)
    assert down.returncode == 3 and "could not be reached" in down.stderr and "AccountKey" not in down.stderr


def test_run_shows_progress_steps_and_demo_prints_the_report(mljob, env, genes_file, jobs_path):
    assert mljob("submit", str(genes_file), "--name", "progress-job", env=env).returncode == 0
    run = mljob("run", "progress-job", env=env)
    assert run.returncode == 0, run.stderr
    assert "progress-job: done" in run.stderr and "100%" in run.stderr
    follow = mljob("status", "progress-job", "--follow", env=env)
    assert follow.returncode == 0 and "completed (200)" in follow.stdout and "100%" in follow.stderr
    report = mljob("report", "progress-job", env=env)
    assert report.returncode == 0 and report.stdout.strip().endswith("results/report.html")
    quiet = mljob("run", "progress-job", "--quiet", env=env)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_list_and_cleanup(mljob, env, genes_file, jobs_path):
    for name in ("old-done", "old-created", "new-job"):
        assert mljob("submit", str(genes_file), "--name", name, env=env).returncode == 0
    assert mljob("run", "old-done", "--quiet", env=env).returncode == 0
    for name, day in (("old-done", "02"), ("old-created", "01")):  # make them years old
        path = jobs_path / name / "status.json"
        status = json.loads(path.read_text())
        status["created"] = f"2020-01-{day}T00:00:00Z"
        path.write_text(json.dumps(status))
    listing = mljob("list", env=env)
    assert listing.returncode == 0
    names = [line.split()[0] for line in listing.stdout.splitlines()[1:]]
    assert names == ["new-job", "old-done", "old-created"]
    assert "completed" in listing.stdout and listing.stdout.splitlines()[0].split()[-1] == "attempt"
    only = mljob("list", "--status", "completed", env=env)
    assert [line.split()[0] for line in only.stdout.splitlines()[1:]] == ["old-done"]

    dry = mljob("cleanup", "--older-than", "5", env=env)
    assert dry.returncode == 0 and "would remove old-done" in dry.stdout and "nothing removed" in dry.stderr
    assert (jobs_path / "old-done").is_dir()
    done = mljob("cleanup", "--older-than", "5", "--status", "completed", "--yes", env=env)
    assert done.returncode == 0 and "removed 1 job folder" in done.stdout
    assert not (jobs_path / "old-done").exists() and (jobs_path / "old-created").is_dir()
    running = jobs_path / "old-created" / "status.json"
    status = json.loads(running.read_text())
    status["status"], status["code"] = "running", 102
    running.write_text(json.dumps(status))
    kept = mljob("cleanup", "--older-than", "5", "--yes", env=env)
    assert kept.returncode == 0 and (jobs_path / "old-created").is_dir()
    status["status"], status["code"] = "created", 201  # listed as created, but a run has just taken its lease
    running.write_text(json.dumps(status))
    with RunLease(ResultsFileStore(jobs_path), "old-created"):
        held = mljob("cleanup", "--older-than", "5", "--yes", env=env)
    assert held.returncode == 0 and "removed 0 job folder(s)" in held.stdout, held
    assert "kept old-created: job old-created is being run" in held.stderr and (jobs_path / "old-created").is_dir()
    gone = mljob("cleanup", "--older-than", "5", "--yes", env=env)
    assert "removed 1 job folder(s)" in gone.stdout and not (jobs_path / "old-created").exists()


def test_cancel_command_exit_codes(mljob, env, genes_file, jobs_path):
    assert mljob("submit", str(genes_file), "--name", "to-cancel", env=env).returncode == 0
    first = mljob("cancel", "to-cancel", env=env)
    assert first.returncode == 0 and "to-cancel: cancelled (410)" in first.stdout
    assert json.loads((jobs_path / "to-cancel" / "status.json").read_text())["status"] == "cancelled"
    assert mljob("cancel", "to-cancel", env=env).returncode == 0  # twice: the same answer
    assert mljob("submit", str(genes_file), "--name", "finished-job", "--run", env=env).returncode == 0
    done = mljob("cancel", "finished-job", env=env)
    assert done.returncode == 1 and "is completed" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    bad = mljob("cancel", "Bad..Name", env=env)
    assert bad.returncode == 2 and "invalid job name" in bad.stderr
    assert mljob("cancel", "no-such-job", env=env).returncode == 2
    assert mljob("status", "to-cancel", env=env).returncode == 1  # a cancelled job did not succeed
