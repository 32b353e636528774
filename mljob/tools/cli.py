"""The `mljob` command: make demo data, submit and run jobs, read their status and results.

Exit codes: 0 ok, 1 the job failed, 2 bad usage or input, 3 a service it needs (the queue, the share,
the function app) could not be reached; errors are one line on stderr. Settings are read from the
environment here, once per command (by `main`), and passed down; a malformed one stops every command
before it does anything, with one line naming it and exit 2 (`mljob serve` too, before it serves). Like
`mljob serve` (and `func start`), every command first puts the "Values" of ./local.settings.json into the
environment, where they are not set already.
Only the commands that run a job (`run`, `submit --run`, `demo`) need DATA_PATH.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import yaml

from mljob import __version__
from mljob.errors import InvalidInput, JobNotFound, JobNotReady, MljobError, ServiceUnavailable, ShareError, UsageError
from mljob.job import CLUSTER_METHODS, GSCS, NETWORKS, SPECIES, validate_jobname
from mljob.job_manager import JobManager
from mljob.launcher import LocalLauncher
from mljob.results_store import ResultsFileStore
from mljob.settings import Settings
from mljob.status import JobStatus, State, utcnow
from mljob.tools.progress import follow, run_with_progress

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
# The exit code of each error class (the first that matches).
EXIT_CODES: list[tuple[type[MljobError], int]] = [
    (ServiceUnavailable, EXIT_UNAVAILABLE),
    (ShareError, EXIT_FAILED),
    (MljobError, EXIT_USAGE),
]
DEMO_WORKDIR = Path("mljob-demo")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mljob` console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.handler is not cmd_serve:  # `mljob serve` reads the settings of its --app-dir itself, and logs them
            from mljob.tools.devhost import load_local_settings

            load_local_settings(Path.cwd())
            args.settings = _read_settings(args)  # a malformed setting stops every command here: one line, exit 2
        return args.handler(args)
    except MljobError as exc:
        print(f"mljob: error: {exc}", file=sys.stderr)
        return next(code for kind, code in EXIT_CODES if isinstance(exc, kind))
    except KeyboardInterrupt:
        print("mljob: interrupted", file=sys.stderr)
        return 130


# --- commands --------------------------------------------------------------------------------


def cmd_make_data(args: argparse.Namespace) -> int:
    from mljob.tools.synthetic_data import make_backend_data

    species = _csv(args.species, SPECIES, "--species")
    summary = make_backend_data(args.dir, species=species, n_genes=args.genes, dim=args.dim, seed=args.seed)
    print(f"synthetic GenePlexus backend data written to {args.dir}: {summary}")
    return EXIT_OK


def cmd_submit(args: argparse.Namespace) -> int:
    params = _load_config_file(args.config) if args.config else {}
    name = args.name or params.pop("jobname", None)
    for key in (
        "net_type",
        "sp_trn",
        "gsc_trn",
        "callback_url",
        "min_num_pos",
        "num_folds",
        "num_nodes",
        "clust_method",
    ):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    if args.sp_res is not None:
        params["sp_res"] = _csv(args.sp_res, SPECIES, "--sp-res")
    if args.gsc_res is not None:
        params["gsc_res"] = _csv(args.gsc_res, GSCS, "--gsc-res")
    if args.no_cross_validate:
        params["cross_validate"] = False
    manager = _manager(args, need_data=args.run)  # creating the folder needs no backend data
    jobname = manager.submit(
        _read_input(args.genes_file),
        params,
        name=name,
        prefix=args.prefix,
        negatives=_read_input(args.negatives) if args.negatives else None,
        launch=False,
        replace=args.replace,
    )
    print(jobname, flush=True)
    if not args.run:
        return EXIT_OK
    status = manager.launch(jobname)
    print(_status_line(status), file=sys.stderr)
    return EXIT_OK if status.status is State.COMPLETED else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    manager = _manager(args)
    jobname = validate_jobname(args.jobname)
    manager.status(jobname)  # JobNotFound before anything runs
    if args.quiet:
        status = manager.launch(jobname)
    else:
        status = run_with_progress(lambda: manager.launch(jobname), lambda: manager.status(jobname))
    print(_status_line(status))
    return EXIT_OK if status.status is State.COMPLETED else EXIT_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    manager = _manager(args, need_data=False)
    status = manager.status(validate_jobname(args.jobname))
    if args.follow:
        status = follow(lambda: manager.status(args.jobname))
    if args.json:
        print(status.model_dump_json(indent=2))
    else:
        print(_status_line(status))
        if status.status is State.RUNNING:
            print(f"  step: {status.progress.step} ({status.progress.percent}%)")
    return EXIT_FAILED if status.status in (State.FAILED, State.TIMEOUT, State.CANCELLED) else EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    from mljob.lifecycle import cancel_job

    settings = _settings(args)
    store = ResultsFileStore.from_settings(settings)
    try:
        status = cancel_job(store, validate_jobname(args.jobname), settings)
    except JobNotReady as exc:  # completed, failed or timed out: left as it is
        print(f"mljob: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if status.status is State.CANCELLED:
        print(_status_line(status))
    else:
        print(f"{status.jobname}: cancel requested; its run stops within seconds (mljob status --follow)")
    return EXIT_OK


def cmd_results(args: argparse.Namespace) -> int:
    manager = _manager(args, need_data=False)
    results = manager.results(validate_jobname(args.jobname)).top_genes
    for key, rows in results.items():
        print(f"{args.jobname}: top genes for {key}")
        print(_table(rows[: args.top]))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from mljob.report import write_report

    manager = _manager(args, need_data=False)
    jobname = validate_jobname(args.jobname)
    manager.status(jobname)  # JobNotFound
    print(write_report(manager.store, jobname))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    store = ResultsFileStore.from_settings(_settings(args))
    rows = _job_rows(store, statuses=args.status or (), prefix=args.prefix, most=args.limit)
    print(f"{'job':<42} {'status':<10} {'created':<17} {'duration':>9} {'attempt':>7}")
    for row in rows:
        seconds = f"{row['seconds']:.1f}s" if row["seconds"] is not None else ""
        created = row["created_at"].strftime("%Y-%m-%d %H:%M")
        print(f"{row['jobname']:<42} {row['status']:<10} {created:<17} {seconds:>9} {row['attempt']:>7}")
    return EXIT_OK


def cmd_cleanup(args: argparse.Namespace) -> int:
    from mljob.job_folders import NOT_REMOVABLE, remove_job

    settings = _settings(args)
    store = ResultsFileStore.from_settings(settings)
    cutoff = utcnow() - timedelta(days=args.older_than)
    kept = {state.value for state in NOT_REMOVABLE}
    doomed = [
        row
        for row in _job_rows(store, statuses=[args.status] if args.status else ())
        if row["created_at"] < cutoff and row["status"] not in kept
    ]
    if not doomed:
        print(f"no job older than {args.older_than:g} days to remove")
        return EXIT_OK
    for row in doomed:
        print(f"would remove {row['jobname']} ({row['status']}, created {row['created_at']:%Y-%m-%d %H:%M})")
    if not args.yes:
        answer = input(f"remove these {len(doomed)} job folder(s)? [y/N] ") if sys.stdin.isatty() else ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed (pass --yes to remove without asking)", file=sys.stderr)
            return EXIT_OK
    removed = 0
    for row in doomed:
        try:
            remove_job(store, row["jobname"], settings)
        except (JobNotReady, JobNotFound) as exc:  # it started, was queued or went since the listing
            print(f"kept {row['jobname']}: {exc}", file=sys.stderr)
            continue
        removed += 1
    print(f"removed {removed} job folder(s)")
    return EXIT_OK


def cmd_enqueue(args: argparse.Namespace) -> int:
    from mljob.enqueue import enqueue_jobs
    from mljob.queue import JobQueue

    settings = _settings(args)
    store = ResultsFileStore.from_settings(settings)
    for name in enqueue_jobs(store, JobQueue.from_settings(settings), args.jobnames, rerun=args.rerun):
        print(name)
    return EXIT_OK


def cmd_poison_list(args: argparse.Namespace) -> int:
    from mljob import poison
    from mljob.queue import JobQueue

    overview = poison.overview(JobQueue.from_settings(_settings(args)))
    queue, poisoned = overview["queue"], overview["poison"]
    print(f"queue {queue['name']}: {queue['count']} message(s); {poisoned['name']}: {poisoned['count']} message(s)")
    for item in poisoned["oldest"]:
        what = item["jobname"] or f"names no job: {item['error']}"
        print(f"{item['id']:<38} {item['inserted'] or '':<33} {what}")
    return EXIT_OK


def cmd_poison_requeue(args: argparse.Namespace) -> int:
    from mljob import poison
    from mljob.queue import JobQueue

    if args.all == bool(args.jobnames):
        raise UsageError("name the jobs to requeue, or pass --all (not both)")
    settings = _settings(args)
    store = ResultsFileStore.from_settings(settings)
    names = None if args.all else args.jobnames
    for name in poison.requeue(store, JobQueue.from_settings(settings), names):
        print(name)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from mljob.tools.devhost import serve

    return serve(host=args.host, port=args.port, app_dir=args.app_dir)


def cmd_share_upload(args: argparse.Namespace) -> int:
    import logging

    from mljob.tools.share import upload

    logging.getLogger("azure").setLevel(logging.ERROR)  # the SDK warns with tracebacks about error bodies of HEAD
    connection_string = Settings.from_env(
        queue_connection_string=args.connection_string
    ).require_queue_connection_string()
    report = upload(
        args.src,
        args.dest,
        connection_string=connection_string,
        share_name=args.share,
        workers=args.workers,
        progress=not args.no_progress,
        overwrite=args.overwrite,
    )
    print(report.summary())
    if report.failed:
        print(f"mljob: {len(report.failed)} file(s) failed:", file=sys.stderr)
        for path, reason in report.failed:
            print(f"  {path}: {reason}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from mljob.tools.synthetic_data import make_backend_data

    settings = _settings(args)
    settings = dataclasses.replace(
        settings,
        data_path=settings.data_path or args.workdir / "data",
        jobs_path=settings.jobs_path or args.workdir / "jobs",
    )
    data_path, jobs_path = settings.data_path, settings.jobs_path
    if not (data_path / "README.md").exists() and not any(data_path.glob("data_filenames_*.txt")):
        print(f"making synthetic demo data in {data_path} ...", file=sys.stderr)
        make_backend_data(data_path)
    jobs_path.mkdir(parents=True, exist_ok=True)
    manager = JobManager(ResultsFileStore.from_settings(settings), LocalLauncher.from_settings(settings))
    genes = resources.files("mljob.tools").joinpath("demo_genes.txt").read_bytes()
    jobname = manager.submit(genes, {}, prefix="demo", launch=False)
    print(f"running demo job {jobname} on {len(genes.split())} genes ...", file=sys.stderr)
    status = manager.launch(jobname)
    print(_status_line(status))
    if status.status is not State.COMPLETED:
        return EXIT_FAILED
    results = manager.results(jobname)
    for key, rows in results.top_genes.items():
        print(f"\ntop genes for {key}:")
        print(_table(rows[:15]))
    print(f"\njob folder: {results.folder}")
    print(f"report: {results.report}")
    return EXIT_OK


# --- helpers ---------------------------------------------------------------------------------


def _read_settings(args: argparse.Namespace) -> Settings:
    """The environment, with --data-path / --jobs-path over it."""
    return Settings.from_env(data_path=getattr(args, "data_path", None), jobs_path=getattr(args, "jobs_path", None))


def _settings(args: argparse.Namespace) -> Settings:
    """The settings of this command, as `main` read them once."""
    return args.settings


def _manager(args: argparse.Namespace, need_data: bool = True) -> JobManager:
    settings = _settings(args)
    store = ResultsFileStore.from_settings(settings)
    data_path = settings.require_data_path() if need_data else settings.data_path or Path(".")
    return JobManager(store, LocalLauncher(store, data_path, settings), settings)


def _job_rows(
    store: ResultsFileStore, *, statuses: Sequence[str] = (), prefix: str = "", most: int | None = None
) -> list[dict[str, Any]]:
    """The jobs for `list` and `cleanup`, newest first, page by page (mljob.job_listing, as GET /api/jobs)."""
    from mljob import job_listing

    rows: list[dict[str, Any]] = []
    after = None
    while most is None or len(rows) < most:
        page = job_listing.list_jobs(store, statuses=statuses, prefix=prefix, limit=job_listing.MAX_LIMIT, after=after)
        rows.extend(page.jobs)
        if page.next is None:
            break
        after = page.next
    for row in rows:
        row["created_at"] = datetime.fromisoformat(str(row["created"]).replace("Z", "+00:00"))
    return rows[:most] if most is not None else rows


def _status_line(status: JobStatus | None) -> str:
    if status is None:
        return "launched"
    return f"{status.jobname}: {status.status.value} ({status.code}): {status.message}"


def _csv(text: str, allowed: tuple[str, ...], option: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    wrong = [v for v in values if v not in allowed]
    if wrong or not values:
        raise UsageError(f"{option}: {', '.join(wrong) or 'nothing'} not allowed; allowed: {', '.join(allowed)}")
    return values


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"gene file {path} does not exist or is not a file")
    return file.read_bytes()


def _load_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InvalidInput(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"config file {path} is not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"config file {path} must hold a mapping of parameters")
    return data


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'rank':>4}  {'symbol':<12} {'probability':>11}  {'known':<5}  name"]
    for row in rows:
        known = "known" if row["known"] else "novel"
        lines.append(f"{row['rank']:>4}  {row['symbol']:<12} {row['probability']:>11.3f}  {known:<5}  {row['name']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `mljob`."""
    paths = _Parser(add_help=False)
    paths.add_argument("--data-path", type=Path, help="GenePlexus backend data folder (default: $DATA_PATH)")
    paths.add_argument("--jobs-path", type=Path, help="folder of job folders (default: $JOBS_PATH)")

    parser = _Parser(prog="mljob", description="Run GenePlexus jobs from job folders.")
    parser.add_argument("--version", action="version", version=f"mljob {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", parents=[paths], help="make demo data if missing, run a demo job, show top genes")
    demo.add_argument(
        "--workdir",
        type=Path,
        default=DEMO_WORKDIR,
        help=f"where demo data and jobs go when DATA_PATH/JOBS_PATH are unset (default: {DEMO_WORKDIR})",
    )
    demo.set_defaults(handler=cmd_demo)

    make = sub.add_parser("make-data", help="write a small synthetic GenePlexus backend data set")
    make.add_argument("dir", type=Path)
    make.add_argument("--genes", type=int, default=300, help="genes per species (default 300; 19000 is realistic)")
    make.add_argument("--dim", type=int, default=32, help="embedding dimension (default 32; 512 is realistic)")
    make.add_argument("--species", default="Human,Mouse", help="comma-separated species (default Human,Mouse)")
    make.add_argument("--seed", type=int, default=0)
    make.set_defaults(handler=cmd_make_data)

    submit = sub.add_parser("submit", parents=[paths], help="create a job from a gene file; prints its name")
    submit.add_argument("genes_file", help="genes, one per line (or comma/tab/space separated); - reads stdin")
    naming = submit.add_mutually_exclusive_group()
    naming.add_argument("--name", help="the job name (default: generated)")
    naming.add_argument("--prefix", help="a prefix for the generated job name")
    submit.add_argument("--config", type=Path, help="job parameters as a YAML or JSON file (flags override it)")
    submit.add_argument("--negatives", help="a file of negative genes")
    submit.add_argument("--net-type", dest="net_type", choices=NETWORKS)
    submit.add_argument("--sp-trn", dest="sp_trn", choices=SPECIES)
    submit.add_argument("--sp-res", dest="sp_res", help=f"comma-separated, from {', '.join(SPECIES)}")
    submit.add_argument("--gsc-trn", dest="gsc_trn", choices=GSCS)
    submit.add_argument("--gsc-res", dest="gsc_res", help=f"comma-separated, from {', '.join(GSCS)}")
    submit.add_argument("--min-num-pos", dest="min_num_pos", type=int)
    submit.add_argument("--num-folds", dest="num_folds", type=int)
    submit.add_argument("--no-cross-validate", action="store_true")
    submit.add_argument("--num-nodes", dest="num_nodes", type=int)
    submit.add_argument("--cluster", dest="clust_method", choices=CLUSTER_METHODS)
    submit.add_argument("--callback-url", dest="callback_url")
    submit.add_argument("--replace", action="store_true", help="replace an existing job of the same name")
    submit.add_argument("--run", action="store_true", help="run the job now, in this process")
    submit.set_defaults(handler=cmd_submit)

    run = sub.add_parser(
        "run",
        parents=[paths],
        help="run a job now, in a job process this command supervises, showing its progress (limits: "
        "JOB_TIMEOUT_SECONDS, JOB_MEMORY_MB; Ctrl-C cancels it)",
    )
    run.add_argument("jobname")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=cmd_run)

    status = sub.add_parser("status", parents=[paths], help="show a job's status")
    status.add_argument("jobname")
    status.add_argument("--json", action="store_true", help="print status.json as it is")
    status.add_argument("--follow", action="store_true", help="show the job's progress until it ends")
    status.set_defaults(handler=cmd_status)

    cancel = sub.add_parser(
        "cancel",
        parents=[paths],
        help="cancel a job: created or queued at once, running within seconds (exit 0 cancelled, "
        "1 already finished, 2 bad name or unknown job)",
    )
    cancel.add_argument("jobname")
    cancel.set_defaults(handler=cmd_cancel)

    results = sub.add_parser("results", parents=[paths], help="show a completed job's top genes")
    results.add_argument("jobname")
    results.add_argument("--top", type=int, default=20)
    results.set_defaults(handler=cmd_results)
    report = sub.add_parser("report", parents=[paths], help="(re)write a completed job's results/report.html")
    report.add_argument("jobname")
    report.set_defaults(handler=cmd_report)

    listing = sub.add_parser("list", parents=[paths], help="the jobs in JOBS_PATH, newest first")
    listing.add_argument("--status", action="append", choices=[s.value for s in State], help="(repeatable)")
    listing.add_argument("--prefix", default="", help="only jobs whose names start with this")
    listing.add_argument("--limit", type=int, help="at most this many jobs")
    listing.set_defaults(handler=cmd_list)

    cleanup = sub.add_parser("cleanup", parents=[paths], help="remove old job folders (never a queued or running one)")
    cleanup.add_argument("--older-than", dest="older_than", type=float, required=True, metavar="DAYS")
    cleanup.add_argument("--status", choices=[s.value for s in State])
    cleanup.add_argument("--yes", action="store_true", help="remove without asking")
    cleanup.set_defaults(handler=cmd_cleanup)

    enqueue = sub.add_parser(
        "enqueue", parents=[paths], help="put jobs on the Azure Storage Queue (QUEUECONNECTIONSTRING)"
    )
    enqueue.add_argument("jobnames", nargs="+")
    enqueue.add_argument("--rerun", action="store_true", help="also re-run jobs that are queued, running or completed")
    enqueue.set_defaults(handler=cmd_enqueue)

    poison = sub.add_parser("poison", help="the poison queue: jobs that failed every try")
    poison_sub = poison.add_subparsers(dest="poison_command", required=True, parser_class=_Parser)
    poison_list = poison_sub.add_parser(
        "list", parents=[paths], help="message counts, and the oldest poison messages with their jobs"
    )
    poison_list.set_defaults(handler=cmd_poison_list)
    requeue = poison_sub.add_parser(
        "requeue", parents=[paths], help="put poisoned jobs back on the queue, all or nothing (prints their names)"
    )
    requeue.add_argument("jobnames", nargs="*")
    requeue.add_argument("--all", action="store_true", help="every job the poison queue names")
    requeue.set_defaults(handler=cmd_poison_requeue)

    serve = sub.add_parser(
        "serve",
        help="DEVELOPMENT server, not the Azure Functions host: serves function_app's HTTP routes under /api "
        "and runs its queue trigger against QUEUECONNECTIONSTRING",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7071)
    serve.add_argument("--app-dir", type=Path, default=Path("."), help="folder of function_app.py and host.json")
    serve.set_defaults(handler=cmd_serve)

    share = sub.add_parser("share", help="fill the Azure Files share the function app mounts")
    share_sub = share.add_subparsers(dest="share_command", required=True, parser_class=_Parser)
    share_upload = share_sub.add_parser(
        "upload",
        help="upload a folder (data, a job folder) or a file to a path inside the share; "
        "files already there with the same size are skipped",
    )
    share_upload.add_argument("src", type=Path, help="local folder or file")
    share_upload.add_argument("dest", help="path inside the share, e.g. data or jobs/<jobname>")
    share_upload.add_argument("--share", required=True, help="the file share (Terraform output share_name)")
    share_upload.add_argument(
        "--connection-string",
        help="storage account connection string (default: $QUEUECONNECTIONSTRING; prefer the variable, "
        "a command line is visible to other users)",
    )
    share_upload.add_argument("--workers", type=int, default=4, help="files uploaded at once (default 4)")
    share_upload.add_argument("--overwrite", action="store_true", help="upload files even if there with the same size")
    share_upload.add_argument("--no-progress", action="store_true", help="no progress bar")
    share_upload.set_defaults(handler=cmd_share_upload)
    return parser
