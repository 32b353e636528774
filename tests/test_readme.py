"""README.md as a new user meets it: every ```bash block, run in order, must work as written.

How the blocks run:

- In a temporary copy of the working tree (the files git lists: tracked, and untracked but not ignored). Its
  `.venv` and `node_modules` are folders of symlinks to the checkout's, with fresh make stamps, so `make`
  finds them installed and never reinstalls (nor re-points the checkout's editable install).
- Each block in a fresh `bash -euo pipefail` with `set -a`; its environment at the end (`env -0`, and the
  folder it ended in) is where the next block starts, as in the one terminal a reader uses. The first block
  starts from a minimal environment: PATH with the checkout's .venv/bin first (the README's
  `source .venv/bin/activate`), HOME in a temporary folder, PYSTOW_HOME and LANG; nothing else (no
  DATA_PATH, JOBS_PATH, QUEUECONNECTIONSTRING...) unless a block sets it.
- `/tmp/geneplexus`, the README's local folder, is rewritten to a temporary folder: in the block text and in
  the copy's local.settings.json.example.
- A line that starts `make serve` or `mljob serve` (a server that runs until stopped) starts in the
  background, "in one terminal"; the rest of the blocks run against it, "in another". It is stopped (SIGTERM
  to its process group) and the copy's Azurite with `scripts/azurite.py stop` at the end. The README's ports
  (7071; Azurite 10000-10002) are used when they are free; when one is taken, the test moves them to free
  ports: 7071 in the block text, the queue port in the copy's local.settings.json.example, and
  `make serve` becomes its two steps with those ports.
- A block whose first line is a skip marker is not run: `# needs Azure: not run by tests/test_readme.py`
  (az, func, terraform, `mljob share upload`, https://<app>... URLs) or `# not run by tests/test_readme.py:
  <why>` (the test suite itself, checkov, `make clean`). The test checks that every block needing one
  carries it, and that no shell block hides under another fence (```sh, ```shell, ```console).

Besides exit codes, it checks what the README says the commands print or leave behind. The README's one
```python block (From Python) runs too, as a script against synthetic data in a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
LOCAL_DATA = "/tmp/geneplexus"  # the README's folder for `mljob serve`; rewritten to a temporary one
AZURE_MARKER = "# needs Azure: not run by tests/test_readme.py"
NOT_RUN_MARKER = "# not run by tests/test_readme.py:"
SERVE_LINE = re.compile(r"^\s*(make serve|(\S*/)?mljob serve)\b.*$", re.M)
NEEDS_AZURE = re.compile(r"(^|[\s;&|(])(az|func|terraform)\s|mljob share upload|https://<app>|azurewebsites\.net", re.M)
# the test suite itself, checkov, `make clean`, and what needs the internet (tests never use it)
NOT_HERE = re.compile(
    r"^\s*(make (test|test-fast|clean|checkov)\b|\S*pytest\b)|pip (compile|install)|npm (ci|install)|download_data",
    re.M,
)
SERVE_PORT, AZURITE_PORT_BASE = 7071, 10000
BLOCK_TIMEOUT = 300
DROPPED_VARIABLES = {"_", "SHLVL", "OLDPWD"}


@dataclass
class Block:
    """One fenced ```bash block of the README."""

    line: int  # where it starts in README.md (1-based, the fence's line)
    text: str

    @property
    def first_line(self) -> str:
        return self.text.lstrip().splitlines()[0] if self.text.strip() else ""

    @property
    def skip_reason(self) -> str | None:
        if self.first_line.startswith(AZURE_MARKER):
            return "needs Azure"
        if self.first_line.startswith(NOT_RUN_MARKER):
            return self.first_line[len(NOT_RUN_MARKER) :].strip() or "marked"
        return None


@dataclass
class Terminal:
    """The reader's terminal: where the next block starts (folder and exported variables)."""

    cwd: Path
    env: dict[str, str]
    # per block run: the block, its stdout, its stderr and the environment after it
    outputs: list[tuple[Block, str, str, dict[str, str]]] = field(default_factory=list)


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^```bash\n(.*?)^```\s*$", text, re.M | re.S):
        blocks.append(Block(text.count("\n", 0, match.start()) + 1, match.group(1)))
    return blocks


def unmarked(block: Block) -> str | None:
    """What is wrong with a block's marking: it needs a skip marker it lacks; None when all is well."""
    code = "\n".join(line for line in block.text.splitlines() if not line.lstrip().startswith("#"))
    if NEEDS_AZURE.search(code) and not block.first_line.startswith(AZURE_MARKER):
        return f"README.md:{block.line} needs Azure: its first line must be {AZURE_MARKER!r}"
    if NOT_HERE.search(code) and not block.skip_reason:
        return (
            f"README.md:{block.line} runs the test suite, cleans up or needs the internet: its first line must be "
            f"{NOT_RUN_MARKER!r}"
        )
    return None


def test_shell_blocks_are_bash_and_marked_when_they_cannot_run_here():
    text = README.read_text(encoding="utf-8")
    fences = re.findall(r"^```(\S*)", text, re.M)
    assert not {f for f in fences if f in ("sh", "shell", "console", "zsh")}, "shell blocks are ```bash"
    blocks = readme_blocks()
    assert blocks, "README.md has no ```bash block"
    for block in blocks:
        assert unmarked(block) is None, unmarked(block)
        if block.skip_reason is None:
            assert AZURE_MARKER not in block.text and NOT_RUN_MARKER not in block.text, (
                f"README.md:{block.line}: a skip marker belongs on the block's first line"
            )


def test_readme_shell_blocks_work_as_written(tmp_path: Path):
    blocks = readme_blocks()
    work = tmp_path / "checkout"
    local = tmp_path / "geneplexus"
    copy_working_tree(work)
    ports_free = not any(port_answers(p) for p in (SERVE_PORT, *range(AZURITE_PORT_BASE, AZURITE_PORT_BASE + 3)))
    serve_port = SERVE_PORT if ports_free else free_port()
    azurite_base = AZURITE_PORT_BASE if ports_free else free_port_base()
    example = work / "local.settings.json.example"
    settings = example.read_text().replace(LOCAL_DATA, str(local))
    if not ports_free:
        settings = settings.replace(f":{AZURITE_PORT_BASE + 1}/", f":{azurite_base + 1}/")
    example.write_text(settings)

    home = tmp_path / "home"
    home.mkdir()
    terminal = Terminal(
        cwd=work,
        env={
            "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/local/bin:/usr/bin:/bin')}",
            "HOME": str(home),
            "PYSTOW_HOME": str(tmp_path / "pystow"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        },
    )
    servers: list[tuple[subprocess.Popen, Path]] = []
    started = time.monotonic()
    ran, skipped = [], []
    try:
        for index, block in enumerate(blocks):
            assert unmarked(block) is None, unmarked(block)  # never run the suite or Azure by mistake
            if block.skip_reason:
                skipped.append(block.line)
                continue
            text = block.text.replace(LOCAL_DATA, str(local))
            if not ports_free:
                text = text.replace(str(SERVE_PORT), str(serve_port))
            serve = SERVE_LINE.search(text)
            if serve is None:
                run_block(terminal, block, text, tmp_path / f"env-{index}")
            else:
                run_block(terminal, block, text[: serve.start()], tmp_path / f"env-{index}-before")
                line = serve.group(0)
                if not ports_free:
                    line = moved_serve_line(line, serve_port, azurite_base)
                servers.append(start_server(terminal, line, serve_port, tmp_path / f"serve-{index}.log"))
                run_block(terminal, block, text[serve.end() :], tmp_path / f"env-{index}-after")
            ran.append(block.line)
        check_what_the_readme_promises(terminal, local)
    finally:
        for server, log in servers:
            stop_server(server, log)
        subprocess.run(  # the copy's own Azurite, if a block started it (`make azurite-stop`)
            [str(REPO / ".venv" / "bin" / "python"), "scripts/azurite.py", "stop"],
            cwd=work,
            capture_output=True,
            timeout=60,
        )
    assert ran and skipped and servers, (ran, skipped)
    ports = "the README's ports" if ports_free else f"ports {serve_port} and {azurite_base}-{azurite_base + 2}"
    print(f"README blocks run: {ran}; skipped: {skipped}; on {ports}; {time.monotonic() - started:.0f} s")


def test_readme_python_example_works_as_written(tmp_path: Path, data_path: Path):
    [example] = re.findall(r"^```python\n(.*?)^```\s*$", README.read_text(encoding="utf-8"), re.M | re.S)
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", example],
        cwd=tmp_path,
        env={**os.environ, "DATA_PATH": str(data_path), "JOBS_PATH": str(jobs)},
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    assert result.returncode == 0, f"README.md's python example failed:\n{result.stderr[-6000:]}"
    lines = result.stdout.splitlines()  # what its comments say it prints
    assert lines[:2] == ["completed", "['Human-Combined', 'Mouse-Combined']"], result.stdout
    assert lines[2].split() == ["Entrez", "Symbol", "Probability"] and len(lines) == 8, result.stdout
    assert lines[6].startswith("{'rank': 1, 'entrez': '20000038', 'symbol': 'Msyn38'"), result.stdout
    assert lines[7].endswith("/results/report.html") and lines[7].startswith(str(jobs)), result.stdout
    assert list(jobs.iterdir()) == []  # cleanup removed the job's folder


# --- running blocks ------------------------------------------------------------------------------


def run_block(terminal: Terminal, block: Block, text: str, env_file: Path) -> str:
    """Run `text` (a block, or part of it) as the README's reader would; the terminal moves on with it."""
    if not text.strip():
        return ""
    script = f"set -a\n{text}\nenv -0 > '{env_file}'\n"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=terminal.cwd,
        env=terminal.env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"README.md:{block.line}: the block failed with exit code {result.returncode}:\n{text}\n--- output:\n"
        + output[-6000:]
    )
    env = dict(item.split("=", 1) for item in env_file.read_bytes().decode().split("\0") if "=" in item)
    terminal.cwd = Path(env.get("PWD", terminal.cwd))
    terminal.env = {k: v for k, v in env.items() if k not in DROPPED_VARIABLES}
    terminal.outputs.append((block, result.stdout, result.stderr, terminal.env))
    return output


def start_server(terminal: Terminal, line: str, port: int, log: Path) -> tuple[subprocess.Popen, Path]:
    """Start a server line in the background; return once it answers HTTP on `port`."""
    with log.open("wb") as out:
        server = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", line],
            cwd=terminal.cwd,
            env=terminal.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2).close()
            return server, log
        except urllib.error.HTTPError:  # 503: it answers; DATA_PATH or JOBS_PATH may not be there yet
            return server, log
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            stop_server(server, log)
            raise AssertionError(f"`{line}` did not start serving on port {port}:\n{log.read_text()[-4000:]}")
        time.sleep(0.25)


def stop_server(server: subprocess.Popen, log: Path) -> None:
    """SIGTERM the server's process group (as Ctrl-C in its terminal would), SIGKILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        if server.poll() is not None:
            break
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            break
        try:
            server.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def moved_serve_line(line: str, port: int, azurite_base: int) -> str:
    """The server line on free ports, when the README's are taken on this machine."""
    if line.lstrip().startswith("make serve"):
        return f"python3 scripts/azurite.py start --port-base {azurite_base} && .venv/bin/mljob serve --port {port}"
    return re.sub(r"(mljob serve)\b", rf"\1 --port {port}", line, count=1)


# --- what the README says they print or leave ----------------------------------------------------


def check_what_the_readme_promises(terminal: Terminal, local: Path) -> None:
    """The outputs the README's comments and prose promise, and the files they say the commands leave."""
    outputs: dict[int, str] = {}
    stdouts: dict[int, str] = {}
    texts, envs = {}, {}
    for block, stdout, stderr, env in terminal.outputs:  # a block split around a server line comes in two parts
        outputs[block.line] = outputs.get(block.line, "") + stdout + stderr
        stdouts[block.line] = stdouts.get(block.line, "") + stdout
        texts[block.line], envs[block.line] = block.text, env

    def block_running(command: str) -> int:
        found = [line for line, text in texts.items() if command in text]
        assert found, f"no README block runs {command!r}"
        return found[0]

    def output_of(command: str) -> str:
        return outputs[block_running(command)]

    demo = output_of("make demo")  # the top predicted genes, the job folder and its report
    assert "top genes for Human-Combined" in demo and "job folder:" in demo, demo[-3000:]
    report = Path(demo.split("report:")[1].split()[0])
    assert report.name == "report.html" and report.is_file()

    job = envs[block_running("JOB=$(mljob submit")].get("JOB", "")  # the job name alone, e.g. mygenes-8e3jt5kz
    assert re.fullmatch(r"mygenes-[a-z0-9]{8}", job), job
    tour = output_of("JOB=$(mljob submit")
    assert f"{job}: completed (200)" in tour and f"{job}: top genes for Human-Combined" in tour, tour[-3000:]

    calls = stdouts[block_running("/testfn")]  # curl's answers, one JSON document after the other
    answers, decoder, at = [], json.JSONDecoder(), 0
    while at < len(calls.rstrip()):
        answer, at = decoder.raw_decode(calls, at)
        answers.append(answer)
    testfn, refused, accepted, job_status, health = answers
    assert testfn["jobname"] == "8e3jt5kz" and testfn["status"] == "completed", testfn  # its final status
    assert "is completed" in refused["error"], refused  # 409: it is completed (add "rerun")
    assert accepted["accepted"] == ["8e3jt5kz"], accepted
    assert job_status["status"] in ("queued", "running", "completed"), job_status
    assert health["ok"] is True, health

    queued = envs[block_running("mljob enqueue $JOB")]["JOB"]  # the queue commands, from local.settings.json
    commands = output_of("mljob enqueue $JOB")
    assert re.fullmatch(r"queued-[a-z0-9]{8}", queued) and f"{queued}\n" in commands, commands
    assert f"{queued}: completed (200)" in commands, commands  # status --follow: queued -> running -> completed
    assert re.search(r"queue jobprocessing: \d+ message\(s\); jobprocessing-poison: 0 message", commands), commands
    assert (local / "jobs" / queued / "results" / "report.html").is_file()  # JOBS_PATH of local.settings.json

    # the queued re-run ends completed (queued -> running -> completed), its second attempt
    status_file = local / "jobs" / "8e3jt5kz" / "status.json"
    deadline = time.monotonic() + 120
    while True:
        status = json.loads(status_file.read_text())
        if (status["status"] == "completed" and status["attempt"] >= 2) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status["status"] == "completed" and status["attempt"] >= 2, status


# --- the copy of the working tree ---------------------------------------------------------------


def copy_working_tree(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    # .venv and node_modules: their folders as symlinks to the checkout's; their top-level files (make's stamps,
    # pyvenv.cfg) as fresh copies, newer than the copied pyproject.toml and package-lock.json
    for installed in (".venv", "node_modules"):
        folder = dest / installed
        folder.mkdir()
        for entry in (REPO / installed).iterdir():
            if entry.is_dir():
                (folder / entry.name).symlink_to(entry)
            else:
                shutil.copyfile(entry, folder / entry.name)
    # `make` must find both installed: a reinstall from the copy would re-point the checkout's editable install
    up_to_date = subprocess.run(["make", "--question", "setup", "npm-setup"], cwd=dest, capture_output=True)
    assert up_to_date.returncode == 0, "make would reinstall .venv or node_modules in the copy: run `make setup` first"


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_base() -> int:
    for _ in range(50):
        base = free_port()
        if base + 2 < 65536 and not any(port_answers(p) for p in (base + 1, base + 2)):
            return base
    raise AssertionError("no three free ports in a row for Azurite")
