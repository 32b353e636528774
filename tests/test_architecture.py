"""The rules of docs/architecture.md, checked on the parsed source (ast, lazy and TYPE_CHECKING imports included):
the layers of the doc's module table, the ML stack's one home, the edges, and one home per concern."""

from __future__ import annotations

import ast
import builtins
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "mljob"
DOC = REPO / "docs" / "architecture.md"
FUNCTION_APP = REPO / "function_app.py"

ML_STACK = ("geneplexus", "numpy", "pandas", "scipy", "sklearn")
FACES = ("__init__.py", "__main__.py")  # the package face (`__version__`, lazy names) and `python -m mljob`
#: The only modules outside mljob/science that import it, and the process each runs the science in.
SCIENCE_USERS = {
    "job_process.py": "the job process, started by the supervisor as a new interpreter",
    "job_results.py": "a Python user's process: result tables as DataFrames, imported when asked for",
}
#: What runs in the host process (the Functions host's Python worker, `mljob serve`): never the ML stack.
HOSTS = ("function_app.py", "tools/devhost.py")
#: Where the environment is read, and why that is an edge or no setting at all.
ENV_READERS = {
    ("settings.py", "Settings.from_env"): "its default environ: the one reader of mljob's settings",
    ("run_geneplexus.py", "main"): "`python -m mljob.run_geneplexus` is an edge",
    ("queue.py", "JobQueue._make_client"): "requests' CA-bundle variables, read once for the SDK (no mljob setting)",
    ("supervisor.py", "JobProcessHandle.__init__"): "a job process inherits this process's environment",
}


def key(path: Path) -> str:
    """A module as docs/architecture.md names it: its path under mljob/ (`job.py`, `science/pipeline.py`)."""
    return path.relative_to(PACKAGE).as_posix() if path.is_relative_to(PACKAGE) else path.name


def _modules(folder: Path) -> list[str]:
    return sorted(key(p) for p in folder.glob("*.py") if p.name not in FACES)


RUNTIME = _modules(PACKAGE) + _modules(PACKAGE / "science")
SCIENCE = _modules(PACKAGE / "science")
TOOLS = _modules(PACKAGE / "tools")


@cache
def tree(module: str) -> ast.Module:
    path = FUNCTION_APP if module == "function_app.py" else PACKAGE / module
    return ast.parse(path.read_text(encoding="utf-8"))


def _file_of(dotted: str) -> Path | None:
    """The file of an importable module of this repository, or None (a name inside a module, or no module)."""
    base = REPO.joinpath(*dotted.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _resolve(node: ast.ImportFrom, module: str) -> list[str]:
    """The modules a `from ... import ...` loads: `from mljob import job` loads `mljob.job`, not just `mljob`."""
    if node.level:  # relative: from the importing module's package
        package = ["mljob", *module.split("/")[:-1]][: len(module.split("/")) + 1 - node.level]
        base = ".".join([*package, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    return [f"{base}.{a.name}" if _file_of(f"{base}.{a.name}") else base for a in node.names]


@cache
def imports(module: str) -> dict[str, int]:
    """Every module `module` imports, anywhere in it (functions and TYPE_CHECKING blocks too): {name: line}."""
    found: dict[str, int] = {}
    for node in ast.walk(tree(module)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = _resolve(node, module)
        elif isinstance(node, ast.Call) and _dotted(node.func) in ("importlib.import_module", "__import__"):
            names = [a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        for name in names:
            found.setdefault(name, node.lineno)
    return found


def mljob_imports(module: str) -> dict[str, int]:
    """The mljob modules `module` imports, named as the doc names them (`mljob` itself left out)."""
    found = {}
    for name, line in imports(module).items():
        path = _file_of(name) if name.startswith("mljob.") else None
        if path and path.name != "__init__.py":
            found.setdefault(key(path), line)
        elif name.startswith("mljob."):
            found.setdefault(name.removeprefix("mljob.").replace(".", "/") + "/__init__.py", line)
    return found


def _dotted(node: ast.expr) -> str:
    """`a.b.c` for an expression of names and attributes, else ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def calls(module: str) -> set[str]:
    """What `module` calls, as written (`callback.notify`, `store.update_status`, `JobNotFound`)."""
    return {_dotted(n.func) for n in ast.walk(tree(module)) if isinstance(n, ast.Call)} - {""}


def modules_calling(suffix: str) -> list[str]:
    """The runtime modules with a call whose name is `suffix` or ends in `.suffix`."""
    return sorted(m for m in RUNTIME if any(c == suffix or c.endswith("." + suffix) for c in calls(m)))


# --- the doc's tables ----------------------------------------------------------------------------


def doc_tables() -> dict[tuple[str, ...], list[list[str]]]:
    """docs/architecture.md's markdown tables: {header cells: rows of cells}."""
    tables: dict[tuple[str, ...], list[list[str]]] = {}
    lines = DOC.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1].strip()):
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append([cell.strip() for cell in row.strip().strip("|").split("|")])
            tables[tuple(cell.strip() for cell in line.strip().strip("|").split("|"))] = rows
    return tables


def _module_cell(cell: str) -> str:
    """The module a table cell names: its first `name.py` (a cell may add `+ templates/`)."""
    found = re.match(r"`([\w/]+\.py)`", cell)
    assert found, f"docs/architecture.md: {cell!r} does not start with a `module.py`"
    return found.group(1)


def _listed(rows: list[list[str]], column: int) -> list[str]:
    listed = [_module_cell(row[column]) for row in rows]
    assert len(listed) == len(set(listed)), f"docs/architecture.md lists a module twice: {sorted(listed)}"
    return listed


@cache
def layers() -> dict[str, int]:
    """The runtime table (`| layer | module | holds |`): {module: layer}."""
    rows = doc_tables()[("layer", "module", "holds")]
    return dict(zip(_listed(rows, 1), (int(row[0]) for row in rows), strict=True))


def test_the_doc_lists_every_runtime_module_and_only_those():
    listed = layers()
    assert sorted(set(RUNTIME) - set(listed)) == [], "runtime modules missing from docs/architecture.md's table"
    assert sorted(set(listed) - set(RUNTIME)) == [], "docs/architecture.md's table lists modules that do not exist"


def test_the_doc_lists_every_edge_and_only_those():
    listed = _listed(doc_tables()[("module", "holds")], 0)
    assert sorted(listed) == sorted(["function_app.py", *TOOLS])


@pytest.mark.parametrize("module", RUNTIME)
def test_a_runtime_module_imports_only_lower_layers_and_never_the_tools(module: str):
    table = layers()
    for other, line in mljob_imports(module).items():
        assert not other.startswith("tools/"), f"{module}:{line} imports {other}: the tools are not deployed"
        if other.endswith("__init__.py"):
            continue  # a package face
        assert module in table, f"docs/architecture.md does not list {module}"
        assert other in table, f"docs/architecture.md does not list {other}, which {module}:{line} imports"
        assert table[other] < table[module], (
            f"{module} (layer {table[module]}) imports {other} (layer {table[other]}) at line {line}"
        )


def test_the_function_app_imports_neither_the_tools_nor_the_science():
    for other, line in mljob_imports("function_app.py").items():
        assert not other.startswith(("tools/", "science/")), f"function_app.py:{line} imports {other}"


# --- the science -----------------------------------------------------------------------------------


def _outside_science() -> list[str]:
    faces = [p.name for p in PACKAGE.glob("*.py") if p.name in FACES]
    return ["function_app.py", *faces, *(m for m in RUNTIME if m not in SCIENCE)]


@pytest.mark.parametrize("module", _outside_science())
def test_the_ml_stack_is_imported_only_under_science_and_tools(module: str):
    stack = {name: line for name, line in imports(module).items() if name.split(".")[0] in ML_STACK}
    assert not stack, f"{module} imports {stack}: the ML stack belongs in mljob/science/"


def test_only_the_job_process_and_the_results_handle_import_the_science():
    importers = {
        module
        for module in [*_outside_science(), *TOOLS]
        for other in mljob_imports(module)
        if other.startswith("science/")
    }
    assert importers <= set(SCIENCE_USERS), f"{sorted(importers - set(SCIENCE_USERS))} import mljob.science"


def reached(start: str) -> set[str]:
    """Every mljob module `start` may load, directly or through others (lazy imports followed too)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for other in mljob_imports(todo.pop()):
            if other not in seen and not other.endswith("__init__.py"):
                seen.add(other)
                todo.append(other)
    return seen


@pytest.mark.parametrize("host", HOSTS)
def test_the_host_process_never_loads_the_science(host: str):
    science = sorted(m for m in reached(host) if m.startswith("science/") or m in SCIENCE_USERS)
    assert science == [], f"{host} reaches {science}: the science runs in the job process"


def test_the_science_knows_no_job_folders_status_or_queues():
    host_things = {"results_store.py", "status.py", "queue.py", "lease.py", "messages.py", "lifecycle.py"}
    assert not host_things & set(mljob_imports("science/pipeline.py"))


# --- the edges -------------------------------------------------------------------------------------


def env_reads(module: str) -> set[str]:
    """Where `module` reads the environment (os.environ, os.getenv, a from_env call): enclosing function names."""
    found: set[str] = set()

    def visit(node: ast.AST, where: list[str]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            where = [*where, node.name]
        name = _dotted(node.func) if isinstance(node, ast.Call) else _dotted(node) if isinstance(node, ast.expr) else ""
        reads = name in ("os.environ", "os.getenv") or (isinstance(node, ast.Call) and name.endswith("from_env"))
        imported = isinstance(node, ast.ImportFrom) and node.module == "os"
        if reads or (imported and {a.name for a in node.names} & {"environ", "getenv"}):
            found.add(".".join(where) or "<module>")
        for child in ast.iter_child_nodes(node):
            visit(child, where)

    visit(tree(module), [])
    return found


def test_the_environment_is_read_only_at_the_edges():
    readers = {(module, where) for module in RUNTIME for where in env_reads(module)}
    assert readers == set(ENV_READERS)
    assert env_reads("function_app.py"), "function_app.py reads the settings (Settings.from_env)"


# --- one home per concern --------------------------------------------------------------------------


def test_one_home_per_concern():
    assert modules_calling("callback.notify") == ["lifecycle.py"]  # the callback, once per final state
    # a run's transitions (lifecycle), its progress (the job process), enqueue's `queued`
    assert modules_calling("update_status") == ["enqueue.py", "job_process.py", "lifecycle.py"]
    states = {_dotted(n) for n in ast.walk(tree("job_process.py")) if _dotted(n).startswith("State.")}
    assert states == {"State.RUNNING"}  # the job process writes progress within `running`, never a final state
    # stopping a run: the supervisor alone signals a job process
    assert modules_calling("terminate") == modules_calling("kill") == ["supervisor.py"]
    assert modules_calling("os.killpg") == modules_calling("send_signal") == []
    assert modules_calling("base64.b64decode") == ["messages.py"]  # the wire format


def test_job_not_found_is_decided_by_the_store():
    def raisers() -> set[str]:
        return {
            m
            for m in RUNTIME
            for n in ast.walk(tree(m))
            if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call) and _dotted(n.exc.func) == "JobNotFound"
        }

    # ResultsFileStore.require_job decides "not found"; enqueue and poison add "nothing was enqueued/requeued",
    # UrlLauncher reports a remote app's 404, the API answers 404 for results that do not exist yet
    assert sorted(raisers()) == ["api.py", "enqueue.py", "launcher.py", "poison.py", "results_store.py"]
    # no hand-made not-found checks on a store
    stores = [m for m in RUNTIME if m != "results_store.py" for c in calls(m) if re.search(r"store\.exists$", c)]
    assert stores == []


def _exception_names() -> set[str]:
    """The names of every exception class: Python's and those of mljob/errors.py."""
    python = {n for n in dir(builtins) if isinstance(getattr(builtins, n), type)}
    python = {n for n in python if issubclass(getattr(builtins, n), BaseException)}
    errors = ast.parse((PACKAGE / "errors.py").read_text(encoding="utf-8"))
    return python | {n.name for n in ast.walk(errors) if isinstance(n, ast.ClassDef)}


@pytest.mark.parametrize("module", [m for m in ["function_app.py", *RUNTIME, *TOOLS] if m != "errors.py"])
def test_every_error_class_lives_in_errors(module: str):
    exceptions = _exception_names()
    for node in ast.walk(tree(module)):
        if isinstance(node, ast.ClassDef):
            bases = {_dotted(b).rsplit(".", 1)[-1] for b in node.bases}
            exception = bases & exceptions or any(b.endswith(("Error", "Exception")) for b in bases)
            assert not exception, f"{module}: class {node.name} is an exception outside mljob/errors.py"
