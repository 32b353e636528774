"""Reproducible installs: requirements.txt is the complete, hashed lock of the function app; the tests run on
the locked versions; pyproject.toml declares every package mljob imports; and the lock, installed alone with
--require-hashes into a fresh virtual environment, runs the deployed app (slow)."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

import pytest
from test_deployment import deployed

from mljob.job import parse_config
from mljob.results_store import ResultsFileStore

REPO = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)", re.M)


def pins() -> dict[str, str]:
    return {_canonical(name): version for name, version in PIN.findall((REPO / "requirements.txt").read_text())}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_lock_pins_every_package_with_hashes():
    text = (REPO / "requirements.txt").read_text()
    entries = [e for e in re.split(r"\n(?=[A-Za-z0-9])", text) if e.strip() and not e.startswith("#")]
    assert len(entries) == len(pins()) > 20
    for entry in entries:
        assert PIN.match(entry) and "--hash=sha256:" in entry, entry.splitlines()[0]
    sources = [line.split("#")[0].strip() for line in (REPO / "requirements.in").read_text().splitlines()]
    for source in filter(None, sources):
        assert _canonical(re.split(r"[<>=!~ ]", source)[0]) in pins(), source
    assert "uv pip compile requirements.in --generate-hashes" in (REPO / "requirements.in").read_text()


def test_the_test_environment_runs_the_locked_versions():
    for name, version in pins().items():
        assert metadata.version(name) == version, f"{name}: {metadata.version(name)} here, {version} in the lock"


def test_pyproject_declares_every_package_mljob_imports():
    declared = _declared()
    owners = metadata.packages_distributions()
    for path in (REPO / "mljob").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in ("mljob", "function_app") or top not in owners:
                    continue
                assert any(_canonical(d) in declared for d in owners[top]), f"{path.name} imports {top}: undeclared"


def _declared() -> set[str]:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return {_canonical(re.split(r"[<>=!~ \[]", r)[0]) for r in requirements}


@pytest.mark.slow
def test_the_lock_alone_installs_and_runs_the_deployed_app(tmp_path, data_path, demo_genes):
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--require-hashes", "-r", str(REPO / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    site = tmp_path / "site"
    for name in deployed(REPO):
        if (REPO / name).is_file():
            (site / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / name, site / name)
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    ResultsFileStore(jobs).create_job(parse_config({"jobname": "locked-job"}), demo_genes)
    code = (
        "import function_app, sys\n"
        "from azure.functions.queue import QueueMessage\n"
        "fns = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}\n"
        "fns['process_job'](QueueMessage(id='m1', body=b'locked-job', dequeue_count=1))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(site),
        "DATA_PATH": str(data_path),
        "JOBS_PATH": str(jobs),
        "QUEUE_NAME": "locked",
        "QUEUECONNECTIONSTRING": "UseDevelopmentStorage=true",
        "PYSTOW_HOME": str(tmp_path / "pystow"),
        "HOME": str(tmp_path),
    }
    run = subprocess.run([str(python), "-c", code], cwd=site, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    status = json.loads((jobs / "locked-job" / "status.json").read_text())
    assert status["status"] == "completed", status["message"]
    versions = json.loads((jobs / "locked-job" / "job_info.json").read_text())["versions"]
    assert versions["numpy"] == pins()["numpy"] and versions["scikit-learn"] == pins()["scikit-learn"]
