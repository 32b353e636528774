"""The rules of docs/architecture.md, checked on the source: layers, edges, and one home per concern."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "mljob"

# docs/architecture.md's table: a runtime module imports only modules of a lower layer.
LAYERS = {
    "errors": 0,
    "status": 0,
    "backend_data": 0,
    "cache": 0,
    "network_layout": 0,
    "settings": 1,
    "fast_path": 1,
    "job": 1,
    "results_store": 2,
    "messages": 2,
    "lease": 3,
    "queue": 3,
    "pipeline": 3,
    "results": 3,
    "callback": 3,
    "registry": 3,
    "job_log": 3,
    "supervisor": 3,
    "manifest": 4,
    "report": 4,
    "console": 4,
    "job_process": 5,
    "service": 5,
    "lifecycle": 6,
    "worker": 7,
    "api": 7,
    "launcher": 7,
    "run_geneplexus": 7,
    "job_manager": 8,
    "webapp": 8,
}
RUNTIME = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))


def source(module: str) -> str:
    return (PACKAGE / f"{module}.py").read_text(encoding="utf-8")


def imported(module: str) -> set[str]:
    """The mljob modules a runtime module imports (anywhere in it, TYPE_CHECKING blocks included)."""
    names = set()
    for node in ast.walk(ast.parse(source(module))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mljob":
            if node.module == "mljob":
                names.update(
                    f"mljob.{a.name}" if (PACKAGE / f"{a.name}.py").exists() or (PACKAGE / a.name).is_dir() else "mljob"
                    for a in node.names
                )
            else:
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] == "mljob")
    return names


def test_the_table_covers_every_runtime_module():
    assert sorted(LAYERS) == RUNTIME


@pytest.mark.parametrize("module", RUNTIME)
def test_a_module_imports_only_lower_layers_and_never_the_tools(module: str):
    for name in imported(module):
        assert not name.startswith("mljob.tools"), f"{module} imports {name}: the tools are not deployed"
        if name == "mljob":
            continue  # the package face (__version__)
        other = name.split(".")[1]
        assert LAYERS[other] < LAYERS[module], f"{module} (layer {LAYERS[module]}) imports {other} ({LAYERS[other]})"


def test_the_environment_is_read_only_at_the_edges():
    readers = sorted(m for m in RUNTIME if "from_env(" in source(m) and m != "settings")
    assert readers == ["run_geneplexus"]  # its main(): `python -m mljob.run_geneplexus` is an edge
    assert "Settings.from_env(" in (REPO / "function_app.py").read_text()


def test_one_home_per_concern():
    def callers(text: str) -> list[str]:
        return sorted(m for m in RUNTIME if text in source(m))

    assert callers("callback.notify(") == ["lifecycle"]  # the callback, once per final state
    # a run's transitions (lifecycle), its progress (the job process), enqueue's `queued` (service)
    assert callers(".update_status(") == ["job_process", "lifecycle", "service"]
    assert "State.RUNNING" in source("job_process") and "State.COMPLETED" not in source("job_process")
    # "job not found" is decided by ResultsFileStore.require_job; the service adds "nothing was enqueued" to
    # that message, and UrlLauncher reports a remote app's 404
    # (the API also answers 404 for results that do not exist yet)
    assert callers("raise JobNotFound(") == ["api", "launcher", "results_store", "service"]
    assert "store.exists(" not in "".join(source(m) for m in RUNTIME)  # no hand-made not-found checks
    assert callers("base64.b64decode(") == ["messages"]  # the wire format
    pipeline = imported("pipeline")
    assert not pipeline & {"mljob.results_store", "mljob.status", "mljob.queue", "mljob.lease", "mljob.messages"}


def test_every_error_class_lives_in_errors():
    for path in [*PACKAGE.glob("*.py"), *(PACKAGE / "tools").glob("*.py")]:
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                exception = any(b.endswith(("Error", "Exception", "Unavailable", "Input", "Escape")) for b in bases)
                assert not exception, f"{path.name}: class {node.name} is an exception outside mljob/errors.py"
