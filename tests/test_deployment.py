"""The deployed file set: what `func azure functionapp publish` uploads after .funcignore.

A developer's folder (a clean clone plus what `make test`, `make demo` and `make serve` leave behind) is
rebuilt in a temporary folder; .funcignore is applied with gitignore rules (pathspec, as Core Tools reads
it). The result must hold only the function app and the runtime part of mljob, and must run a job on
its own: a process whose only copy of mljob is the deployed one imports function_app and runs a job.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pathspec
import pytest

from mljob.job import parse_config
from mljob.results_store import ResultsFileStore

REPO = Path(__file__).resolve().parent.parent

# What a developer's folder holds besides the clone (made by make test, make demo, make serve, builds).
CLUTTER = [
    ".venv/bin/python",
    ".venv/lib/python3.11/site-packages/x.py",
    ".venv-checkov/bin/checkov",
    "node_modules/azurite/index.js",
    ".azurite/data/__queue__",
    "mljob-demo/jobs/demo-12345678/status.json",
    "benchmarks/.data/human/NodeOrder__Human__STRING.txt",
    "mljob/__pycache__/job.cpython-311.pyc",
    "mljob/tools/__pycache__/cli.cpython-311.pyc",
    "mljob.egg-info/PKG-INFO",
    "build/lib/mljob/job.py",
    ".pytest_cache/README.md",
    ".ruff_cache/CACHEDIR.TAG",
    "local.settings.json",
]


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if (REPO / line).is_file()]


def deployed(folder: Path) -> list[str]:
    """The files of `folder` that .funcignore lets through, as relative POSIX paths."""
    spec = pathspec.GitIgnoreSpec.from_lines((folder / ".funcignore").read_text().splitlines())
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    return sorted(f for f in files if not spec.match_file(f))


@pytest.fixture(scope="module")
def developer_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("developer-folder")
    for name in tracked_files():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, folder / name)
    for name in CLUTTER:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("clutter\n")
    return folder


def test_only_the_app_and_the_runtime_package_are_deployed(developer_folder: Path):
    files = deployed(developer_folder)
    runtime = sorted(
        p.relative_to(REPO).as_posix()
        for p in [
            *(REPO / "mljob").glob("*.py"),
            *(REPO / "mljob/science").glob("*.py"),
            *(REPO / "mljob/templates").iterdir(),
        ]
        if p.name != "__main__.py"
    )
    assert files == sorted([".funcignore", "function_app.py", "host.json", "requirements.txt", *runtime])
    assert not [f for f in files if f.startswith(("mljob/tools", "tests", "benchmarks", "docs", "scripts"))]


def test_the_deployed_set_runs_a_job_on_its_own(developer_folder: Path, data_path: Path, tmp_path: Path, demo_genes):
    site = tmp_path / "site"
    for name in deployed(developer_folder):
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(developer_folder / name, site / name)
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    ResultsFileStore(jobs).create_job(parse_config({"jobname": "deployed-job"}), demo_genes)
    # In Azure, mljob is a folder of the app, not an installed package: drop the editable install's finder.
    code = r"""
import importlib.util, json, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
import function_app, mljob
from azure.functions.queue import QueueMessage
functions = {fn.get_function_name(): fn.get_user_function() for fn in function_app.app.get_functions()}
functions["process_job"](QueueMessage(id="m1", body=b'{"jobname": "deployed-job"}', dequeue_count=1))
print(json.dumps({
    "mljob": mljob.__file__,
    "tools": importlib.util.find_spec("mljob.tools") is not None,
    "loaded": sorted(m for m in sys.modules if m.startswith("mljob.tools")),
}))
"""
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "DATA_PATH": str(data_path),
        "JOBS_PATH": str(jobs),
        "QUEUE_NAME": "deployed",
        "QUEUECONNECTIONSTRING": "UseDevelopmentStorage=true",
    }
    done = subprocess.run([sys.executable, "-c", code], cwd=site, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(seen["mljob"]).is_relative_to(site)
    assert seen["tools"] is False and seen["loaded"] == []
    status = json.loads((jobs / "deployed-job" / "status.json").read_text())
    assert status["status"] == "completed", status["message"]
    assert (jobs / "deployed-job" / "results" / "report.html").is_file()
