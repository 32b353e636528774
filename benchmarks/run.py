"""mljob benchmarks: runner overhead, queue path, cold start, warm worker, enqueue throughput, memory, scaling,
fast path, preload, listing, concurrency, gpz-convert-ids.

    .venv/bin/python benchmarks/run.py            # full run (~15 min on 2 cores); data made once in benchmarks/.data/
    .venv/bin/python benchmarks/run.py --quick    # smoke test: small data, 1-2 rounds (~1-2 min)

Every comparison runs inside this one command, its two sides interleaved (A B B A A B ...), and the
table gives the median of each side and the ratio A/B against its target. Per-job timings are
wall-clock seconds. Results are also written as JSON (--json) and the scaling plot as PNG (--plot,
needs matplotlib). See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA_ROOT = REPO / "benchmarks" / ".data"
ENQUEUE_APP = REPO / "benchmarks" / "enqueue_app"
POLL_SECONDS = 0.5  # maxPollingInterval of the benchmark host.json (the production host.json says 2 s)
QUEUE_HOST_JSON = {
    "version": "2.0",
    "extensions": {
        "queues": {
            "batchSize": 1,
            "newBatchThreshold": 0,
            "maxDequeueCount": 3,
            "visibilityTimeout": "00:00:05",
            "maxPollingInterval": "00:00:00.500",
            "messageEncoding": "base64",
        }
    },
}

os.environ.setdefault("PYSTOW_HOME", str(DATA_ROOT / "pystow"))  # geneplexus writes a README there on import


# --- data -------------------------------------------------------------------------------------------


def dataset(n_genes: int, dim: int) -> Path:
    """Synthetic Human backend data of this size, made once (kept in benchmarks/.data/, git-ignored)."""
    path = DATA_ROOT / f"human-{n_genes}x{dim}"
    if not (path / "README.md").is_file():  # written last by make_backend_data
        from mljob.tools.synthetic_data import make_backend_data

        print(f"making synthetic backend data {path.name} (once) ...", flush=True)
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        make_backend_data(tmp, species=["Human"], n_genes=n_genes, dim=dim)
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
    return path


def input_genes(data_path: Path, count: int, seed: int = 7) -> list[str]:
    """`count` genes of the STRING network as symbols, mostly from a few GSC terms (like a real gene set)."""
    import numpy as np

    gsc = json.loads((data_path / "GSC__Human__Combined__STRING.json").read_text())
    symbols = json.loads((data_path / "IDconversion__Human__Entrez-to-Symbol.json").read_text())
    rng = np.random.default_rng(seed)
    picked: list[str] = []
    for term in rng.permutation(gsc["Term_Order"]).tolist():
        for gene in gsc[term]["Genes"]:
            if gene not in picked:
                picked.append(gene)
        if len(picked) >= count:
            break
    return [symbols[g][0] for g in picked[:count] if g in symbols]


# --- one job, two ways --------------------------------------------------------------------------------


def direct_job(data_path: Path, genes: list[str], out_dir: Path) -> None:
    """The GenePlexus calls run_geneplexus makes, made directly (default job parameters)."""
    from geneplexus import GenePlexus

    gp = GenePlexus(
        file_loc=str(data_path),
        net_type="STRING",
        features="SixSpeciesN2V",
        sp_trn="Human",
        sp_res=["Human"],
        gsc_trn="Combined",
        gsc_res=["Combined"],
        auto_download=False,
        log_level="WARNING",
    )
    gp.load_genes(list(genes))
    gp.fit(logreg_kwargs={}, min_num_pos=15, min_num_pos_cv=15, num_folds=3, random_state=0, cross_validate=True)
    gp.predict()
    gp.make_sim_dfs()
    gp.make_small_edgelist(num_nodes=50)
    gp.save_class(str(out_dir), save_type="all", zip_output=False, overwrite=False)


def runner_job(store: Any, data_path: Path, genes: list[str], name: str) -> Any:
    """One job through the runner: store, status, logs, results, manifest (LocalLauncher).

    The benchmark is an edge: DATA_CACHE_MB is read from the environment, which the comparisons set.
    """
    from mljob.job import parse_config
    from mljob.launcher import LocalLauncher
    from mljob.settings import Settings
    from mljob.status import State

    store.create_job(parse_config({"jobname": name}), genes)
    status = LocalLauncher(store, data_path, Settings.from_env()).launch(name)
    assert status.status is State.COMPLETED, status.message
    return status


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def job_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def result_digest(folder: Path) -> dict[str, str]:
    """Every result table of a job (df_probs, df_sim, df_edge, ... as text), by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*.tsv"))}


def job_processes() -> list[int]:
    """The job processes this process started (its children running mljob.job_process)."""
    tasks = Path("/proc/self/task").iterdir()
    children = [int(pid) for task in tasks for pid in (task / "children").read_text().split()]
    return [pid for pid in children if b"mljob.job_process" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def previous_convert_ids(data_path: Path, genes: list[str]) -> dict[str, Any]:
    """gpz-convert-ids's work as the previous code did it (2fede61's webapp.load_genes): GenePlexus's load_genes in
    the calling process, through its own warm data cache, and web_files.input_genes cell by cell."""
    from mljob.science.session import open_geneplexus
    from mljob.science.web_files import input_genes

    params = {"net_type": "STRING", "features": "SixSpeciesN2V", "sp_trn": "Human", "gsc_trn": "GO",
              "sp_res": ["Human"], "gsc_res": ["GO"]}  # fmt: skip
    with open_geneplexus(data_path, params, cache_mb=2048, fast=True) as opened:
        opened.gp.load_genes(list(genes))
        return input_genes(opened.gp)


# --- child processes (fresh interpreters for memory and warm-worker runs) --------------------------------


def child(mode: str, data_path: str, genes_file: str, work: str, extra: str) -> None:
    data, genes, work_dir = Path(data_path), Path(genes_file).read_text().split(), Path(work)
    if mode == "first":
        print("RESULT " + json.dumps(first_result(data, genes, work_dir)))
        return
    import geneplexus  # noqa: F401  (a worker imports it at start; not part of any job's time)

    from mljob import supervisor
    from mljob.results_store import ResultsFileStore

    if mode not in ("memory-direct", "direct"):
        supervisor.prestart(wait=True)  # ... and starts its job process, which imports it too

    store = ResultsFileStore(work_dir)
    out: dict[str, Any] = {}
    if mode == "memory-direct":
        direct_job(data, genes, work_dir / "direct-out")
    elif mode == "direct":  # GenePlexus 3.0.1 alone, one job in a fresh process (its import not counted)
        out["seconds"] = [timed(direct_job, data, genes, work_dir / "direct-out")]
    elif mode == "memory-runner":
        name = job_name("mem")
        runner_job(store, data, genes, name)
        out["job_peak_rss_mb"] = store.read_job_info(name)["peak_memory_mb"]  # measured in the job process
    elif mode == "warm":
        seconds, cpu, digests = [], [], []
        for _ in range(int(extra)):
            name = job_name("warm")
            seconds.append(timed(runner_job, store, data, genes, name))
            cpu.append(store.read_job_info(name)["cpu_seconds"])  # the job process's CPU time for the job
            digests.append(result_digest(store.job_path(name) / "results"))
        out["seconds"] = seconds
        out["cpu_seconds"] = cpu  # less disturbed than wall-clock time by other work on a shared machine
        out["identical"] = all(d == digests[0] for d in digests)
        caches = [store.read_job_info(name)["data_cache"] for name in store.list_jobs()]  # per job, in its process
        out["cache"] = {"hits": sum(c["hits"] for c in caches), "misses": sum(c["misses"] for c in caches)}
        (work_dir / "digest.json").write_text(json.dumps(digests[0]))
    from mljob.manifest import peak_rss_mb

    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out))


def first_result(data: Path, genes: list[str], work_dir: Path) -> dict[str, Any]:
    """A new host (PRELOAD from the environment, or none): it starts its job process, which imports the ML stack
    (and preloads), then its first message arrives; then a second one."""
    from mljob import supervisor
    from mljob.results_store import ResultsFileStore
    from mljob.settings import Settings

    started = time.perf_counter()
    supervisor.prestart(Settings.from_env(data_path=str(data)), wait=True)
    ready = time.perf_counter() - started
    store = ResultsFileStore(work_dir)
    first, second = job_name("first"), job_name("second")
    seconds = [timed(runner_job, store, data, genes, name) for name in (first, second)]
    return {
        "ready": ready,
        "first_job": seconds[0],
        "second_job": seconds[1],
        "misses": store.read_job_info(first)["data_cache"]["misses"],
    }


def run_child(mode: str, data: Path, genes_file: Path, work: Path, extra: str = "", **env: str) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(data), str(genes_file), str(work), extra],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=REPO,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"child {mode} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


# --- the comparisons --------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.rows: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="mljob-bench-"))
        n, dim = (2000, 128) if args.quick else (19000, 512)
        self.data = dataset(n, dim)
        self.genes = input_genes(self.data, 100)
        self.genes_file = self.tmp / "genes.txt"
        self.genes_file.write_text("\n".join(self.genes))
        self.rounds = args.rounds or (2 if args.quick else 3)

    def row(
        self,
        what: str,
        a: str,
        b: str,
        xs: list[float],
        ys: list[float],
        target: str,
        ok: bool | None = None,
        ratio: float | None = None,
        unit: str = "s",
        note: str = "",
    ) -> None:
        ma, mb = statistics.median(xs), statistics.median(ys)
        ratio = ma / mb if ratio is None else ratio
        if ok is None:
            op, value = target.split()
            ok = ratio <= float(value) if op == "<=" else ratio >= float(value)
        self.rows.append(
            dict(
                what=what,
                a=a,
                b=b,
                median_a=ma,
                median_b=mb,
                ratio=ratio,
                target=target,
                met=ok,
                unit=unit,
                n=len(xs),
                a_all=xs,
                b_all=ys,
                note=note,
            )
        )
        print(
            f"  {what}: A {ma:.3f}{unit}  B {mb:.3f}{unit}  A/B {ratio:.3f}  target {target}  "
            f"{'MET' if ok else 'NOT MET'} {note}",
            flush=True,
        )

    # runner overhead, in this process, interleaved; the cache is off on both sides (pure overhead)
    def overhead(self) -> None:
        from mljob.results_store import ResultsFileStore

        print("runner overhead ...", flush=True)
        os.environ["DATA_CACHE_MB"] = "0"
        os.environ["FAST_PATH"] = "0"  # the runner's own cost, on GenePlexus's own code (the fast path: `fast`)
        store = ResultsFileStore(self._dir("overhead-jobs"))
        direct_job(self.data, self.genes, self.tmp / f"warmup-{uuid.uuid4().hex}")  # imports, page cache
        runner_job(store, self.data, self.genes, job_name("warmup"))
        a, b = [], []
        for i in range(self.rounds):
            order = ("A", "B") if i % 2 == 0 else ("B", "A")
            for side in order:
                if side == "A":
                    a.append(timed(runner_job, store, self.data, self.genes, job_name("ovh")))
                else:
                    b.append(timed(direct_job, self.data, self.genes, self.tmp / f"direct-{uuid.uuid4().hex}"))
        self.row("runner overhead", "job via LocalLauncher, FAST_PATH=0", "direct GenePlexus calls", a, b, "<= 1.05")
        os.environ.pop("FAST_PATH")
        if self.args.profile:
            self._profile(store)

    def _profile(self, store: Any) -> None:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        runner_job(store, self.data, self.genes, job_name("prof"))
        prof.disable()
        stream = io.StringIO()
        stats = pstats.Stats(prof, stream=stream).sort_stats("cumulative")
        stats.print_stats(r"mljob/(?!cache)", 25)
        text = stream.getvalue()
        self.extra["profile"] = text
        print(text[text.find("ncalls") - 200 :][:5000])

    def warm(self) -> None:
        print("warm worker ...", flush=True)
        jobs = 5
        firsts, laters, identical = [], [], True
        cpu_firsts, cpu_laters = [], []
        digest_off = None
        for i in range(max(2, self.rounds - 2)):
            # interleaved with a cache-off worker, whose results must be the same
            on = run_child("warm", self.data, self.genes_file, self._dir(f"warm-{i}"), str(jobs), DATA_CACHE_MB="2048")
            firsts.append(on["seconds"][0])
            laters.extend(on["seconds"][1:])
            cpu_firsts.append(on["cpu_seconds"][0])
            cpu_laters.extend(on["cpu_seconds"][1:])
            identical &= on["identical"]
            if digest_off is None:
                off = run_child("warm", self.data, self.genes_file, self._dir(f"cold-{i}"), "2", DATA_CACHE_MB="0")
                digest_off = (self.tmp / f"cold-{i}" / "digest.json").read_text()
                self.extra["warm_cache_off_seconds"] = off["seconds"]
            identical &= (self.tmp / f"warm-{i}" / "digest.json").read_text() == digest_off
            self.extra["warm_cache"] = on["cache"]
        self.row(
            "warm worker",
            "jobs 2..5 in one worker",
            "job 1",
            laters,
            firsts,
            "<= 0.75",
            ok=statistics.median(laters) / statistics.median(firsts) <= 0.75 and identical,
            note=f"identical results: {identical}",
        )
        self.row("warm worker (CPU time)", "jobs 2..5, CPU s", "job 1, CPU s", cpu_laters, cpu_firsts, "<= 0.75")

    def memory(self) -> None:
        print("memory ...", flush=True)
        runner_off, runner_on, direct, fast_off = [], [], [], []
        for i in range(max(2, self.rounds - 2)):
            direct.append(run_child("memory-direct", self.data, self.genes_file, self._dir(f"md-{i}"))["peak_rss_mb"])
            runner_off.append(
                run_child(
                    "memory-runner", self.data, self.genes_file, self._dir(f"mr-{i}"), DATA_CACHE_MB="0", FAST_PATH="0"
                )["job_peak_rss_mb"]
            )
            fast_off.append(
                run_child(
                    "memory-runner", self.data, self.genes_file, self._dir(f"mf-{i}"), DATA_CACHE_MB="0", FAST_PATH="1"
                )["job_peak_rss_mb"]
            )
            runner_on.append(
                run_child("memory-runner", self.data, self.genes_file, self._dir(f"mc-{i}"), DATA_CACHE_MB="2048")[
                    "job_peak_rss_mb"
                ]
            )
        self.row(
            "memory",
            "peak RSS of the job process, job via runner (cache on)",
            "peak RSS, direct calls",
            runner_on,
            direct,
            "<= 1.10",
            unit="MB",
        )
        self.row(
            "memory (cache off)",
            "peak RSS of the job process (DATA_CACHE_MB=0, FAST_PATH=0)",
            "peak RSS, direct calls",
            runner_off,
            direct,
            "<= 1.10",
            unit="MB",
        )
        self.row(
            "memory (fast path)",
            "peak RSS of the job process, FAST_PATH=1 (cache off)",
            "the same with FAST_PATH=0",
            fast_off,
            runner_off,
            "<= 1.001",  # "no higher": VmHWM of the same job varies by a few tenths of a MB from run to run
            unit="MB",
            note=f"FAST_PATH=1 {min(fast_off):.1f}-{max(fast_off):.1f} MB, FAST_PATH=0 "
            f"{min(runner_off):.1f}-{max(runner_off):.1f} MB",
        )

    def cold_start(self) -> None:
        print("cold start ...", flush=True)
        a, b = [], []
        for i in range(self.rounds + 2):
            for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                code = "import function_app" if side == "A" else "import geneplexus"
                start = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
                (a if side == "A" else b).append(time.perf_counter() - start)
        self.row("cold start", "python -c 'import function_app'", "python -c 'import geneplexus'", a, b, "<= 0.15")

    def queue(self) -> None:
        sys.path.insert(0, str(REPO / "tests"))
        from azurite import running_azurite  # tests/azurite.py
        from devhost_process import DevHostProcess

        print("queue path and enqueue throughput (Azurite + mljob serve) ...", flush=True)
        with running_azurite(self._dir("azurite")) as server:
            self._queue_path(server, DevHostProcess)
            self._throughput(server, DevHostProcess)

    def _queue_path(self, server: Any, DevHostProcess: Any) -> None:
        import requests

        from mljob.job import parse_config
        from mljob.results_store import ResultsFileStore

        app = self._dir("queue-app")
        shutil.copy(REPO / "function_app.py", app / "function_app.py")
        (app / "host.json").write_text(json.dumps(QUEUE_HOST_JSON))
        store = ResultsFileStore(self._dir("queue-jobs"))
        env = {
            **os.environ,
            "DATA_PATH": str(self.data),
            "JOBS_PATH": str(store.root),
            "DATA_CACHE_MB": "0",
            "QUEUECONNECTIONSTRING": server.connection_string,
            "QUEUE_NAME": f"bench-{uuid.uuid4().hex[:8]}",
        }
        env.pop("MLJOB_FUNCTION_KEY", None)
        host = DevHostProcess(self._dir("queue-host"), env, app)
        os.environ["DATA_CACHE_MB"] = "0"

        def via_queue() -> None:
            name = job_name("q")
            store.create_job(parse_config({"jobname": name}), self.genes)
            answer = requests.post(f"{host.url}/api/enqueue", json={"jobname": name}, timeout=60)
            assert answer.status_code == 202, answer.text
            while not store.read_status(name).is_final:
                time.sleep(0.02)
            assert store.read_status(name).status.value == "completed"

        try:
            via_queue()  # warm-up: the host imports geneplexus on its first job
            direct_job(self.data, self.genes, self.tmp / f"warmup-{uuid.uuid4().hex}")
            a, b = [], []
            for i in range(self.rounds):
                for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                    if side == "A":
                        a.append(timed(via_queue))
                    else:
                        b.append(timed(direct_job, self.data, self.genes, self.tmp / f"qd-{uuid.uuid4().hex}"))
        finally:
            host.stop()
        ratio_minus_poll = (statistics.median(a) - POLL_SECONDS) / statistics.median(b)
        self.row(
            "queue path",
            "enqueue over HTTP -> completed",
            "the same job run directly",
            a,
            b,
            f"<= 1.10 (+{POLL_SECONDS} s polling)",
            ok=ratio_minus_poll <= 1.10,
            note=f"(A - {POLL_SECONDS} s polling)/B = {ratio_minus_poll:.3f}",
        )

    def web(self) -> None:
        """POST /api/gpz-ml on a warm worker: request to response, against the job's own run time."""
        sys.path.insert(0, str(REPO / "tests"))
        from azurite import running_azurite  # tests/azurite.py
        from devhost_process import DevHostProcess

        print("web app path: gpz-ml and gpz-convert-ids (Azurite + mljob serve) ...", flush=True)
        with running_azurite(self._dir("web-azurite")) as server:
            self._web_path(server, DevHostProcess)

    def _web_path(self, server: Any, DevHostProcess: Any) -> None:
        import requests

        from mljob.queue import JobQueue
        from mljob.results_store import ResultsFileStore

        app = self._dir("web-app")
        shutil.copy(REPO / "function_app.py", app / "function_app.py")
        (app / "host.json").write_text(json.dumps(QUEUE_HOST_JSON))
        store = ResultsFileStore(self._dir("web-jobs"))
        queue = f"bench-web-{uuid.uuid4().hex[:8]}"
        JobQueue(server.connection_string, queue).ensure()
        env = {
            **os.environ,
            "DATA_PATH": str(self.data),
            "JOBS_PATH": str(store.root),
            "DATA_CACHE_MB": "2048",  # a warm worker: the default
            "QUEUECONNECTIONSTRING": server.connection_string,
            "QUEUE_NAME": queue,
        }
        env.pop("MLJOB_FUNCTION_KEY", None)
        host = DevHostProcess(self._dir("web-host"), env, app)
        request = {"name": "bench", "genes": self.genes, "negatives": [], "sp_trn": "Human", "sp_res": "Human",
                   "net_type": "STRING", "gsc": "Combined"}  # fmt: skip

        def gpz_ml() -> tuple[float, float]:
            started = time.perf_counter()
            answer = requests.post(
                f"{host.url}/api/gpz-ml", json=request, headers={"Accept-Encoding": "gzip"}, timeout=230
            )
            seconds = time.perf_counter() - started
            assert answer.status_code == 200, answer.text[:300]
            status = store.read_status(answer.json()["jobname"])
            return seconds, (status.finished - status.started).total_seconds()

        def convert() -> float:
            started = time.perf_counter()
            answer = requests.post(
                f"{host.url}/api/gpz-convert-ids", json={"genes": self.genes, "sp_trn": "Human"}, timeout=60
            )
            assert answer.status_code == 200, answer.text[:300]
            return time.perf_counter() - started

        try:
            gpz_ml()  # warm-up: imports and the data cache
            a, b = zip(*(gpz_ml() for _ in range(self.rounds)), strict=True)
            converts = [convert() for _ in range(5)]
        finally:
            host.stop()
        polls = 2 * POLL_SECONDS  # the queue listener's and gpz-ml's own poll of status.json
        ratio_minus_poll = (statistics.median(a) - polls) / statistics.median(b)
        self.row(
            "web path (gpz-ml)",
            "POST /api/gpz-ml -> 200 with the results",
            "the job's own run time (status.json)",
            list(a),
            list(b),
            f"<= 1.10 (+{polls:g} s polling)",
            ok=ratio_minus_poll <= 1.10,
            note=f"(A - {polls:g} s polling)/B = {ratio_minus_poll:.3f}; gpz-convert-ids warm median "
            f"{statistics.median(converts) * 1000:.0f} ms",
        )
        self.extra["gpz_convert_ids_seconds"] = converts

    def convert(self) -> None:
        """gpz-convert-ids's work on a warm worker (webapp.load_genes), 100 and 10,000 genes: now (a light request to
        a job process, `supervisor.convert_ids`) against before (GenePlexus in the calling process: the previous
        code's load_genes, `previous_convert_ids`), interleaved; and both while a job runs in a job process."""
        import threading

        from mljob import supervisor, webapp
        from mljob.job import parse_config
        from mljob.launcher import LocalLauncher
        from mljob.results_store import ResultsFileStore
        from mljob.settings import Settings
        from mljob.status import State

        print("gpz-convert-ids: in a job process vs in the calling process ...", flush=True)
        symbols = json.loads((self.data / "IDconversion__Human__Entrez-to-Symbol.json").read_text())
        many = [names[0] for names in list(symbols.values())[: 1000 if self.args.quick else 10_000]]
        settings = Settings(data_path=self.data, data_cache_mb=2048)
        calls = max(5, 2 * self.rounds)

        def now(genes: list[str]) -> float:
            return timed(webapp.load_genes, genes, "Human", settings)

        def before(genes: list[str]) -> float:
            return timed(previous_convert_ids, self.data, genes)

        supervisor.shutdown()
        supervisor.prestart(wait=True)
        for genes in (self.genes, many):
            assert webapp.load_genes(genes, "Human", settings) == previous_convert_ids(self.data, genes)
            a, b = [], []
            for i in range(calls):
                for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                    (a if side == "A" else b).append(now(genes) if side == "A" else before(genes))
            what = f"gpz-convert-ids, {len(genes):,} genes"
            self.row(what, "in a job process (now)", "in the calling process (before)", a, b, "<= 1.00")

        os.environ["DATA_CACHE_MB"] = "2048"
        store = ResultsFileStore(self._dir("convert-jobs"))

        def during_a_job(convert: Any, overlap: bool = True) -> float:
            """`convert`'s seconds, called once the job's model is fitting; with `overlap`, the job must still run
            when it ends."""
            name = job_name("cj")
            store.create_job(parse_config({"jobname": name}), self.genes)
            job = threading.Thread(target=LocalLauncher(store, self.data, Settings.from_env()).launch, args=(name,))
            job.start()
            while job.is_alive() and store.read_status(name).progress.step not in ("fitting", "predicting"):
                time.sleep(0.005)
            seconds = convert()
            running = store.read_status(name).status is State.RUNNING
            job.join()
            assert running or not overlap, "the job ended before the conversion: use a bigger job"
            assert store.read_status(name).status is State.COMPLETED, store.read_status(name).message
            return seconds

        supervisor.shutdown()
        supervisor.prestart(wait=True)
        runner_job(store, self.data, self.genes, job_name("cw"))  # the job process is warm
        first = during_a_job(lambda: now(self.genes), overlap=False)  # starts the conversions' job process
        a, b = [], []
        for i in range(calls):
            for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                convert = (lambda: now(self.genes)) if side == "A" else (lambda: before(self.genes))
                (a if side == "A" else b).append(during_a_job(convert))
        idle = [now(self.genes) for _ in range(calls)]
        rss = sorted(round(rss_mb(pid)) for pid in job_processes())
        os.environ.pop("DATA_CACHE_MB")
        supervisor.shutdown()
        self.row(
            "gpz-convert-ids while a job runs",
            f"{len(self.genes)} genes, in a job process (now)",
            "in the calling process (before)",
            a,
            b,
            "<= 1.10",
            note=f"the first call, while a job ran, which started a job process: {first:.2f} s; "
            f"with no job running {statistics.median(idle) * 1000:.0f} ms; idle job processes after: {rss} MB",
        )
        self.extra["convert_ids"] = {"first_while_a_job_runs": first, "idle": idle, "job_process_rss_mb": rss}

    def listing(self) -> None:
        """GET /api/jobs over 10,000 job folders: a page of 50, newest first, against the 1 s target; and the same
        listing with every status.json read delayed as over an Azure Files mount (a model: sleep per read)."""
        from mljob import job_listing
        from mljob.job import parse_config
        from mljob.results_store import ResultsFileStore
        from mljob.status import State

        print("listing 10,000 jobs ...", flush=True)
        jobs = DATA_ROOT / "jobs-10000"
        jobs.mkdir(parents=True, exist_ok=True)
        store = ResultsFileStore(jobs)
        have = len(store.list_jobs())
        for i in range(have, 10_000):
            name = f"listed-{i:05d}"
            store.create_job(parse_config({"jobname": name}), ["CDK1"])
            for state in (State.QUEUED, State.RUNNING, State.COMPLETED)[: i % 4]:
                store.update_status(name, state, f"{state.value} ({i})")

        def page(**query: Any) -> float:
            return timed(lambda: job_listing.list_jobs(store, limit=50, **query))

        page()  # the page cache, as on a warm instance
        first = [page() for _ in range(self.rounds + 2)]
        filtered = [page(statuses=["completed", "failed"]) for _ in range(self.rounds + 2)]
        target = [1.0] * len(first)
        self.row("listing (10,000 jobs)", "a page of GET /api/jobs", "the 1 s target", first, target, "<= 1.00")
        self.row("listing, ?status= filter", "a filtered page", "the 1 s target", filtered, target, "<= 1.00")
        original = ResultsFileStore.read_status_head
        model: dict[str, float] = {}
        try:
            for latency_ms in (2, 10):  # per open+read of a small file on a share (premium, standard Azure Files)

                def slow_head(self: Any, jobname: str, latency: float = latency_ms / 1000) -> Any:
                    time.sleep(latency)
                    return original(self, jobname)

                ResultsFileStore.read_status_head = slow_head  # type: ignore[method-assign]
                model[f"{latency_ms} ms per read"] = statistics.median(page() for _ in range(3))
        finally:
            ResultsFileStore.read_status_head = original  # type: ignore[method-assign]
        self.extra["listing_share_model_seconds"] = model
        print(f"  Azure Files model (a sleep per status.json read, reads in parallel): {model}", flush=True)

    def _throughput(self, server: Any, DevHostProcess: Any) -> None:
        import requests
        from azure.storage.queue import QueueClient, TextBase64EncodePolicy

        from mljob.job import parse_config
        from mljob.results_store import ResultsFileStore

        store = ResultsFileStore(self._dir("tp-jobs"))
        queue_name = f"bench-tp-{uuid.uuid4().hex[:8]}"
        bare_queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
        for q in (queue_name, bare_queue):
            QueueClient.from_connection_string(server.connection_string, q).create_queue()
        env = {
            **os.environ,
            "JOBS_PATH": str(store.root),
            "DATA_PATH": str(self.data),
            "QUEUECONNECTIONSTRING": server.connection_string,
            "QUEUE_NAME": queue_name,
        }
        env.pop("MLJOB_FUNCTION_KEY", None)
        host = DevHostProcess(self._dir("tp-host"), env, ENQUEUE_APP)
        count = 100
        names_all = []

        def make_jobs() -> list[str]:
            names = [job_name("tp") for _ in range(count)]
            for name in names:
                store.create_job(parse_config({"jobname": name}), self.genes[:20])
            names_all.extend(names)
            return names

        def via_http(names: list[str]) -> None:
            answer = requests.post(f"{host.url}/api/enqueue", json={"jobnames": names}, timeout=120)
            assert answer.status_code == 202, answer.text

        def bare(names: list[str]) -> None:
            client = QueueClient.from_connection_string(
                server.connection_string, bare_queue, message_encode_policy=TextBase64EncodePolicy()
            )
            for name in names:
                client.send_message(json.dumps({"jobname": name}))

        try:
            via_http(make_jobs())  # warm-up
            bare(names_all[:count])
            a, b = [], []
            for i in range(self.rounds + 1):
                for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                    names = make_jobs()
                    if side == "A":
                        a.append(count / timed(via_http, names))
                    else:
                        b.append(count / timed(bare, names))
        finally:
            host.stop()
        self.row(
            "enqueue throughput",
            "POST /api/enqueue, 100 names",
            "100 bare send_message",
            a,
            b,
            ">= 0.8",
            unit=" jobs/s",
        )

    def scaling(self) -> None:
        """Job time (GenePlexus alone; the runner with the cache off, and warm with and without the fast path)
        against network size and input size."""
        from mljob import supervisor
        from mljob.results_store import ResultsFileStore

        print("scaling ...", flush=True)
        sizes = [(500, 64), (2000, 128)] if self.args.quick else [(1000, 512), (5000, 512), (19000, 512)]
        gene_counts = [20, 50] if self.args.quick else [25, 400, 1600]  # plus 100, from the network series
        store = ResultsFileStore(self._dir("scaling-jobs"))
        out: dict[str, Any] = {"network": [], "genes": []}

        def measure(data: Path, genes: list[str]) -> dict[str, float]:
            # imports are done (earlier comparisons); GenePlexus alone, then runner jobs: one with the cache off,
            # one to fill the cache, and one served from it with GenePlexus's own code and one with the fast path
            direct = timed(direct_job, data, genes, self.tmp / f"direct-{uuid.uuid4().hex}")
            os.environ["DATA_CACHE_MB"] = "0"
            off = timed(runner_job, store, data, genes, job_name("s"))
            os.environ["DATA_CACHE_MB"] = "2048"
            runner_job(store, data, genes, job_name("fill"))
            os.environ["FAST_PATH"] = "0"
            slow = timed(runner_job, store, data, genes, job_name("s"))
            os.environ["FAST_PATH"] = "1"
            on = timed(runner_job, store, data, genes, job_name("s"))
            os.environ.pop("FAST_PATH")
            supervisor.shutdown()  # the next size starts with an empty cache
            return {"direct": direct, "cold": off, "warm_fast_path_0": slow, "warm": on}

        for n, dim in sizes:
            data = dataset(n, dim)
            result = measure(data, input_genes(data, 100))
            out["network"].append({"genes": n, "dim": dim, **result})
            print(f"  network {n} genes x {dim}: {result}", flush=True)
        for count in gene_counts:
            if count == 100:
                continue
            result = measure(self.data, input_genes(self.data, count))
            out["genes"].append({"input_genes": count, **result})
            print(f"  input {count} genes: {result}", flush=True)
        big = out["network"][-1]
        out["genes"].append({"input_genes": 100, **{k: v for k, v in big.items() if k not in ("genes", "dim")}})
        out["genes"].sort(key=lambda r: r["input_genes"])
        os.environ["DATA_CACHE_MB"] = "0"
        self.extra["scaling"] = out

    def concurrency(self) -> None:
        """Two jobs at once on this machine (two threads, each run in its own job process, as with host.json's
        batchSize 2) against the same two jobs one after the other: does a second job per instance raise
        throughput? Both sides warm (both job processes have served a job; DATA_CACHE_MB 2048, the default).
        benchmarks/capacity.py reads this row and its job figures (docs/capacity.md)."""
        from concurrent.futures import ThreadPoolExecutor

        from mljob.results_store import ResultsFileStore

        print("concurrency: two jobs at once vs one after the other ...", flush=True)
        before = os.environ.get("DATA_CACHE_MB")
        os.environ["DATA_CACHE_MB"] = "2048"
        store = ResultsFileStore(self._dir("concurrency-jobs"))
        jobs: dict[str, list[str]] = {"together": [], "in_a_row": []}

        def one(side: str) -> None:
            name = job_name("cc")
            runner_job(store, self.data, self.genes, name)
            jobs[side].append(name)

        def together() -> None:
            with ThreadPoolExecutor(2) as pool:
                for future in [pool.submit(one, "together") for _ in range(2)]:
                    future.result()

        def in_a_row() -> None:
            one("in_a_row")
            one("in_a_row")

        try:
            together()  # warm-up: two job processes (supervisor.MAX_IDLE keeps both), each with its cache filled
            in_a_row()
            for names in jobs.values():
                names.clear()
            a, b = [], []
            for i in range(self.rounds):
                for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                    (a if side == "A" else b).append(timed(together if side == "A" else in_a_row))
        finally:
            if before is None:
                os.environ.pop("DATA_CACHE_MB", None)
            else:
                os.environ["DATA_CACHE_MB"] = before

        def figures(names: list[str]) -> dict[str, list[float]]:
            infos = [store.read_job_info(name) for name in names]
            return {key: [info[key] for info in infos] for key in ("total_seconds", "cpu_seconds", "peak_memory_mb")}

        self.extra["concurrency"] = {
            "cores": os.cpu_count(),
            "together_seconds": a,
            "in_a_row_seconds": b,
            "jobs_together": figures(jobs["together"]),
            "jobs_in_a_row": figures(jobs["in_a_row"]),
        }
        ratio = statistics.median(a) / statistics.median(b)
        self.row(
            "concurrency (2 jobs)",
            "two jobs at once (two threads, two job processes)",
            "the same two jobs one after the other",
            a,
            b,
            "<= 0.90",
            note=f"throughput x{1 / ratio:.2f} with two at once",
        )

    def fast(self) -> None:
        """The fast path (FAST_PATH=1) against a direct GenePlexus 3.0.1 job in a fresh process (its import not
        counted): the warm jobs (2..5) of one worker, and a fresh worker's first job; with identical results."""
        print("fast path: warm and first jobs vs a direct GenePlexus job in a fresh process ...", flush=True)
        jobs = 5
        warm, first, direct, identical = [], [], [], True
        for i in range(self.rounds):
            for side in ("worker", "direct") if i % 2 == 0 else ("direct", "worker"):
                work = self._dir(f"fast-{side}-{i}")
                if side == "direct":
                    direct.extend(run_child("direct", self.data, self.genes_file, work)["seconds"])
                    continue
                on = run_child("warm", self.data, self.genes_file, work, str(jobs), DATA_CACHE_MB="2048", FAST_PATH="1")
                first.append(on["seconds"][0])
                warm.extend(on["seconds"][1:])
                identical &= on["identical"]
        reference = run_child("warm", self.data, self.genes_file, self._dir("fast-off"), "1", FAST_PATH="0")
        same = (self.tmp / "fast-off" / "digest.json").read_text() == (
            self.tmp / "fast-worker-0" / "digest.json"
        ).read_text()
        self.extra["fast"] = {"warm": warm, "first": first, "direct": direct, "fast_path_0": reference["seconds"]}
        note = f"results identical to FAST_PATH=0: {same and identical}"
        direct_side = "direct GenePlexus job, fresh process"
        self.row("fast path: warm job", "jobs 2..5 in one worker", direct_side, warm, direct, "<= 0.40", note=note)
        first_side = "a fresh worker's first job, no PRELOAD"
        self.row("fast path: first job", first_side, direct_side, first, direct, "<= 0.70", note=note)

    def preload(self) -> None:
        """PRELOAD on a new host: its first job, and the time from the host's start to its first result (the
        message waiting from the start, as when an instance is added for a long queue), with and without."""
        print("preload: a new host's first job ...", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {"preload": [], "none": []}
        for i in range(self.rounds):
            for side in ("preload", "none") if i % 2 == 0 else ("none", "preload"):
                env = {"PRELOAD": "Human:STRING:Combined" if side == "preload" else "", "DATA_CACHE_MB": "2048"}
                runs[side].append(run_child("first", self.data, self.genes_file, self._dir(f"first-{side}-{i}"), **env))
        self.extra["preload"] = runs
        with_, without = runs["preload"], runs["none"]
        assert all(r["misses"] == 0 for r in with_), "a preloaded host's first job read files itself"
        self.row(
            "preload: first job",
            "a new host's first job, PRELOAD=Human:STRING:Combined",
            "the same without PRELOAD",
            [r["first_job"] for r in with_],
            [r["first_job"] for r in without],
            "<= 0.90",
            note=f"its second job: {statistics.median(r['second_job'] for r in without):.2f} s",
        )
        self.row(
            "preload: start to first result",
            "host start -> first result, message waiting, PRELOAD",
            "the same without PRELOAD",
            [r["ready"] + r["first_job"] for r in with_],
            [r["ready"] + r["first_job"] for r in without],
            "<= 1.05",
            note=f"job process ready after {statistics.median(r['ready'] for r in with_):.2f} s with PRELOAD, "
            f"{statistics.median(r['ready'] for r in without):.2f} s without",
        )

    def _dir(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path


# --- report -----------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cores": os.cpu_count(),
    }
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("model name"))
        mem = Path("/proc/meminfo").read_text().split()
        info["memory_gb"] = round(int(mem[mem.index("MemTotal:") + 1]) / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        info["cpu"] = platform.processor()
    import numpy
    import threadpoolctl

    info["numpy"] = numpy.__version__
    info["blas"] = [
        {k: pool.get(k) for k in ("internal_api", "version", "threading_layer", "num_threads", "architecture")}
        for pool in threadpoolctl.threadpool_info()
    ]
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    return info


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| comparison | A | B (reference) | median A | median B | A/B | target | met | n |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        unit = r["unit"]
        lines.append(
            f"| {r['what']} | {r['a']} | {r['b']} | {r['median_a']:.3f}{unit} | {r['median_b']:.3f}{unit} | "
            f"**{r['ratio']:.3f}** | {r['target']} | {'yes' if r['met'] else 'NO'}"
            f"{' — ' + r['note'] if r['note'] else ''} | {r['n']} |"
        )
    return "\n".join(lines)


def plot(scaling: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    net = scaling["network"]
    curves = (
        ("direct", "GenePlexus 3.0.1 alone"),
        ("cold", "runner, DATA_CACHE_MB=0, FAST_PATH=1"),
        ("warm_fast_path_0", "runner, warm cache, FAST_PATH=0"),
        ("warm", "runner, warm cache, FAST_PATH=1"),
    )
    for key, label in curves:
        left.plot([r["genes"] for r in net], [r[key] for r in net], marker="o", label=label)
        right.plot(
            [r["input_genes"] for r in scaling["genes"]], [r[key] for r in scaling["genes"]], marker="o", label=label
        )
    left.set(xlabel="network size (genes)", ylabel="job time (s)", title="job time vs network size (100 input genes)")
    right.set(
        xlabel="input gene-set size",
        ylabel="job time (s)",
        xscale="log",
        title=f"job time vs input size ({net[-1]['genes']} genes; one job per point)",
    )
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot: {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, 2 rounds: a smoke test")
    parser.add_argument("--rounds", type=int, default=0, help="rounds per comparison (default 3, --quick 2)")
    parser.add_argument(
        "--only", default="", help="comma-separated: overhead,queue,web,convert,listing,cold,warm,memory,scaling"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one runner job (mljob functions)")
    parser.add_argument("--json", type=Path, help="write every figure as JSON here")
    parser.add_argument("--plot", type=Path, help="write the scaling plot (PNG) here; needs matplotlib")
    args = parser.parse_args()
    bench = Bench(args)
    info = machine()
    print("machine: " + json.dumps(info))
    print(f"data: {bench.data.name}, input: {len(bench.genes)} genes, rounds: {bench.rounds}", flush=True)
    steps = {
        "overhead": bench.overhead,
        "queue": bench.queue,
        "web": bench.web,
        "convert": bench.convert,
        "listing": bench.listing,
        "cold": bench.cold_start,
        "warm": bench.warm,
        "memory": bench.memory,
        "scaling": bench.scaling,
        "concurrency": bench.concurrency,
        "preload": bench.preload,
        "fast": bench.fast,
    }
    chosen = [s for s in args.only.split(",") if s] or list(steps)
    started = time.time()
    try:
        for name in chosen:
            steps[name]()
    finally:
        shutil.rmtree(bench.tmp, ignore_errors=True)
    print()
    blas = ", ".join(f"{b['internal_api']} {b['version']}" for b in info["blas"])
    print(
        f"machine: {info.get('cpu')}, {info['cores']} cores, {info.get('memory_gb')} GB, Python {info['python']}, "
        f"numpy {info['numpy']}, BLAS {blas}"
    )
    print(f"data: {bench.data.name}; {bench.rounds} rounds; {time.time() - started:.0f} s in all")
    print(table(bench.rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": bench.rows, **bench.extra}, indent=1, default=str))
    if args.plot and "scaling" in bench.extra:
        plot(bench.extra["scaling"], args.plot)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:7])
    else:
        sys.exit(main())
