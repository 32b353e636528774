"""ResultsFileStore: a job's inputs, config, status, log and outputs in a folder store (local or mounted share)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mljob.errors import InvalidInput, JobExists, JobNotFound, LegacyJobFolder, PathEscape
from mljob.job import JobConfig, parse_config, parse_genes, validate_jobname
from mljob.status import JobStatus, Progress, State, utcnow

if TYPE_CHECKING:
    from mljob.settings import Settings

CONFIG_FILE = "job_config.json"
GENES_FILE = "input_genes.txt"
NEGATIVES_FILE = "input_negatives.txt"
STATUS_FILE = "status.json"
LOG_FILE = "job.log"
LEASE_FILE = "run.lock"
CANCEL_FILE = "cancel.request"
JOB_INFO_FILE = "job_info.json"
RESULTS_DIR = "results"
# the 2023 GenePlexus web app's own job folders: <job>_job_config.json, <job>_geneset.txt, <job>_jobstatus
LEGACY_CONFIG_SUFFIX = "_job_config.json"
LEGACY_STATUS_SUFFIX = "_jobstatus"
LEGACY_FAILED = "Failed"  # the text its pages read as a failure
LEGACY_COMPLETED = "Completed"
_STAGING_PREFIX = ".staging-"
_STATUS_HEAD_BYTES = 8192
_TRASH_PREFIX = ".trash-"


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder and a rename: all or nothing."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultsFileStore:
    """One folder per job under `jobs_path`; every path is checked to stay inside it."""

    def __init__(self, jobs_path: str | os.PathLike[str], *, max_genes: int = 10_000, max_bytes: int = 1_000_000):
        root = Path(jobs_path)
        if not root.is_dir():
            raise InvalidInput(f"jobs folder {root} does not exist or is not a folder")
        self.root = root.resolve()
        self.max_genes = max_genes
        self.max_bytes = max_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> ResultsFileStore:
        """The store over JOBS_PATH, with the input limits MAX_INPUT_GENES and MAX_INPUT_BYTES."""
        return cls(settings.require_jobs_path(), max_genes=settings.max_input_genes, max_bytes=settings.max_input_bytes)

    def __repr__(self) -> str:
        return f"ResultsFileStore({str(self.root)!r})"

    # --- paths -------------------------------------------------------------------------------

    def job_path(self, jobname: str) -> Path:
        """The job's folder (which may not exist yet); refuses bad names and symlinks leading out."""
        path = self.root / validate_jobname(jobname)  # a plain name under the resolved root: only a link leads out
        if path.is_symlink():
            raise PathEscape(f"job folder {jobname} is a link that leads out of the jobs folder; refused")
        return path

    def _file(self, jobname: str, *parts: str) -> Path:
        """A path inside an existing job folder; refuses symlinks and anything resolving outside it."""
        folder = self.require_job(jobname)
        path = folder.joinpath(*parts)
        nested = len(path.parts) - len(folder.parts) > 1  # a link in a folder between them could lead out
        if path.is_symlink() or (nested and not path.resolve().is_relative_to(folder)):
            raise PathEscape(f"{'/'.join(parts)} in job {jobname} leads out of the job folder; refused")
        return path

    def require_job(self, jobname: str) -> Path:
        """The folder of an existing job; JobNotFound (the one place it is raised for a job) otherwise."""
        path = self.job_path(jobname)
        if not path.is_dir():
            raise JobNotFound(f"job {jobname} not found")
        return path

    # --- jobs --------------------------------------------------------------------------------

    def exists(self, jobname: str) -> bool:
        """True when a job folder of that name exists."""
        return self.job_path(jobname).is_dir()

    def list_jobs(self) -> list[str]:
        """The names of the job folders, sorted."""
        names = []
        for entry in self.root.iterdir():
            if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith("."):
                try:
                    names.append(validate_jobname(entry.name))
                except InvalidInput:
                    continue
        return sorted(names)

    def create_job(
        self,
        config: JobConfig,
        genes: list[str],
        negatives: list[str] | None = None,
        *,
        replace: bool = False,
    ) -> Path:
        """Create the job folder whole (config, genes, status `created`), or not at all."""
        jobname = config.jobname
        final = self.job_path(jobname)
        if final.exists() and not replace:
            raise JobExists(f"job {jobname} exists already")
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=f"{_STAGING_PREFIX}{jobname}-"))
        try:
            atomic_write(staging / CONFIG_FILE, config.to_json())
            atomic_write(staging / GENES_FILE, "".join(f"{g}\n" for g in genes))
            if negatives:
                atomic_write(staging / NEGATIVES_FILE, "".join(f"{g}\n" for g in negatives))
            atomic_write(staging / STATUS_FILE, JobStatus.new(jobname).model_dump_json(indent=2))
            staging.chmod(0o755)
            if final.exists():
                self._swap_in(staging, final)
            else:
                try:
                    os.rename(staging, final)
                except OSError:
                    raise JobExists(f"job {jobname} exists already") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final

    def delete_job(self, jobname: str, *, confirm: str) -> None:
        """Remove a job folder; `confirm` must repeat the job name."""
        if confirm != jobname:
            raise InvalidInput(f"to delete job {jobname}, pass confirm={jobname!r}")
        self._remove_dir(self.require_job(jobname))

    @staticmethod
    def _remove_dir(target: Path) -> None:
        """Rename `target` out of the way at once, then delete it: it never appears half-deleted."""
        trash = Path(tempfile.mkdtemp(dir=target.parent, prefix=_TRASH_PREFIX))
        os.rename(target, trash / target.name)
        shutil.rmtree(trash, ignore_errors=True)

    @staticmethod
    def _remove_staging_folders(folder: Path) -> None:
        """Remove the staging folders that a stopped run left in a job folder."""
        for leftover in folder.glob(f"{_STAGING_PREFIX}*"):
            shutil.rmtree(leftover, ignore_errors=True)

    @staticmethod
    def _swap_in(new: Path, target: Path) -> None:
        """Replace folder `target` by folder `new` with two renames; the old one is removed after."""
        trash = Path(tempfile.mkdtemp(dir=target.parent, prefix=_TRASH_PREFIX))
        os.rename(target, trash / target.name)
        os.rename(new, target)
        shutil.rmtree(trash, ignore_errors=True)

    # --- inputs ------------------------------------------------------------------------------

    def read_config(self, jobname: str) -> JobConfig:
        """The job's validated config; InvalidInput names what is wrong with it."""
        path = self._file(jobname, CONFIG_FILE)
        if not path.is_file():
            if self.is_legacy_folder(jobname):
                raise LegacyJobFolder(
                    f"job {jobname} is a job folder of the 2023 GenePlexus web app ({jobname}{LEGACY_CONFIG_SUFFIX} "
                    f"with GenePlexus 1.x parameters); mljob runs GenePlexus 3 job folders ({CONFIG_FILE}, "
                    f"{GENES_FILE}): see docs/web-app.md"
                )
            raise InvalidInput(f"job {jobname} has no {CONFIG_FILE}")
        config = parse_config(path.read_bytes())
        if config.jobname != jobname:
            raise InvalidInput(f"{CONFIG_FILE} of job {jobname} names another job ({config.jobname})")
        return config

    def is_legacy_folder(self, jobname: str) -> bool:
        """True for a job folder of the 2023 GenePlexus web app: `<job>_job_config.json` and no job_config.json."""
        if self._file(jobname, CONFIG_FILE).is_file():
            return False
        return self._file(jobname, f"{jobname}{LEGACY_CONFIG_SUFFIX}").is_file()

    def mark_legacy_failed(self, jobname: str) -> bool:
        """Write `Failed` into `<job>_jobstatus` of a 2023 web-app job folder (its pages read that file).

        Only for such a folder (`is_legacy_folder`); the rest of the folder is left alone and no status.json
        is made. A `Completed` status (a job the app's own runner finished) is kept: returns False then,
        True when `Failed` was written. PathEscape when the file is a link (nothing is written through it).
        """
        if not self.is_legacy_folder(jobname):
            raise InvalidInput(f"job {jobname} is not a job folder of the 2023 GenePlexus web app")
        name = f"{jobname}{LEGACY_STATUS_SUFFIX}"
        path = self._file(jobname, name)
        if path.exists() and not path.is_file():
            raise InvalidInput(f"{name} in job {jobname} is not a file; refused")
        if path.is_file():
            with path.open("rb") as handle:
                current = handle.read(100).decode("utf-8", errors="replace").strip()
            if current == LEGACY_COMPLETED:
                return False
        atomic_write(path, LEGACY_FAILED)
        return True

    def write_config(self, config: JobConfig) -> None:
        """Replace the config of an existing job."""
        atomic_write(self._file(config.jobname, CONFIG_FILE), config.to_json())

    def read_genes(self, jobname: str) -> list[str]:
        """The job's input genes, validated."""
        return self._read_gene_file(jobname, GENES_FILE, "input genes")

    def read_negatives(self, jobname: str) -> list[str] | None:
        """The job's negative genes, or None when it has none."""
        if not self._file(jobname, NEGATIVES_FILE).exists():
            return None
        return self._read_gene_file(jobname, NEGATIVES_FILE, "negative genes")

    def _read_gene_file(self, jobname: str, filename: str, what: str) -> list[str]:
        path = self._file(jobname, filename)
        if not path.is_file():
            raise InvalidInput(f"job {jobname} has no {filename}")
        with path.open("rb") as handle:
            data = handle.read(self.max_bytes + 1)
        return parse_genes(data, max_genes=self.max_genes, max_bytes=self.max_bytes, what=what)

    # --- status ------------------------------------------------------------------------------

    def read_status(self, jobname: str) -> JobStatus:
        """The job's status.json; a missing or unreadable one is reported, not guessed."""
        return self.parse_status(jobname, self.status_snapshot(jobname))

    def status_snapshot(self, jobname: str) -> bytes | None:
        """status.json exactly as it is (None when missing), for `parse_status` and `restore_status`."""
        try:
            return self._file(jobname, STATUS_FILE).read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            raise InvalidInput(f"{STATUS_FILE} of job {jobname} is corrupt or unreadable") from None

    def read_status_head(self, jobname: str) -> dict[str, Any]:
        """status.json without its history, read cheaply (its first few KB), for listings of many jobs.

        The keys of JobStatus but `history`, as plain JSON values; InvalidInput when it is missing or
        unreadable. status.json is written with `history` last, so its head holds everything else.
        """
        try:
            with self._file(jobname, STATUS_FILE).open("rb") as handle:
                head = handle.read(_STATUS_HEAD_BYTES)
        except FileNotFoundError:
            raise InvalidInput(f"job {jobname} has no {STATUS_FILE}") from None
        except OSError:
            raise InvalidInput(f"{STATUS_FILE} of job {jobname} is corrupt or unreadable") from None
        text = head.decode("utf-8", errors="replace")
        cut = text.find('"history"')
        try:
            data = json.loads(text[:cut].rstrip().rstrip(",") + "}") if cut > 0 else json.loads(text)
        except ValueError:  # a long message pushed history past the head, or the file is damaged: read it all
            return self.read_status(jobname).model_dump(mode="json", exclude={"history"})
        if not isinstance(data, dict) or data.get("jobname") != jobname or "status" not in data:
            raise InvalidInput(f"{STATUS_FILE} of job {jobname} is corrupt or unreadable")
        data.pop("history", None)
        return data

    @staticmethod
    def parse_status(jobname: str, snapshot: bytes | None) -> JobStatus:
        """The status in a `status_snapshot` of the job; InvalidInput when it is missing or corrupt."""
        if snapshot is None:
            raise InvalidInput(f"job {jobname} has no {STATUS_FILE}")
        try:
            status = JobStatus.model_validate_json(snapshot)
        except ValueError:
            raise InvalidInput(f"{STATUS_FILE} of job {jobname} is corrupt or unreadable") from None
        if status.jobname != jobname:
            raise InvalidInput(f"{STATUS_FILE} of job {jobname} names another job ({status.jobname})")
        return status

    def restore_status(self, jobname: str, snapshot: bytes | None) -> None:
        """Put status.json back as `status_snapshot` found it (removed if it was missing)."""
        path = self._file(jobname, STATUS_FILE)
        if snapshot is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, snapshot)

    def write_status(self, status: JobStatus) -> JobStatus:
        """Write status.json atomically."""
        atomic_write(self._file(status.jobname, STATUS_FILE), status.model_dump_json(indent=2))
        return status

    def update_status(
        self,
        jobname: str,
        state: State,
        message: str = "",
        *,
        progress: Progress | None = None,
        attempt: int | None = None,
    ) -> JobStatus:
        """Move the job to `state` (appending to its history) and write it; returns the new status."""
        self.require_job(jobname)
        try:
            current = self.read_status(jobname)
        except InvalidInput:
            current = JobStatus.new(jobname, message=f"{STATUS_FILE} was missing or corrupt; started anew")
        return self.write_status(current.advance(state, message, progress=progress, attempt=attempt))

    def lease_path(self, jobname: str) -> Path:
        """The job's run lease file (run.lock), held while a run is in progress."""
        return self._file(jobname, LEASE_FILE)

    # --- cancel ------------------------------------------------------------------------------

    def request_cancel(self, jobname: str) -> None:
        """Leave the cancel marker (cancel.request) that the run of the job, on whichever instance, looks for."""
        atomic_write(self._file(jobname, CANCEL_FILE), json.dumps({"requested": utcnow().isoformat()}) + "\n")

    def cancel_requested(self, jobname: str) -> bool:
        """True while the job's cancel marker is there."""
        return self._file(jobname, CANCEL_FILE).is_file()

    def clear_cancel(self, jobname: str) -> None:
        """Remove the cancel marker (once the job has ended, or is queued again)."""
        self._file(jobname, CANCEL_FILE).unlink(missing_ok=True)

    # --- log ---------------------------------------------------------------------------------

    def log_path(self, jobname: str) -> Path:
        """The job's log file (job.log)."""
        return self._file(jobname, LOG_FILE)

    def log_handler(self, jobname: str, level: int = logging.INFO) -> logging.Handler:
        """A handler appending to job.log; the caller adds it to loggers and closes it."""
        handler = logging.FileHandler(self.log_path(jobname), encoding="utf-8")
        handler.setLevel(level)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        return handler

    def read_log(self, jobname: str) -> str:
        """The text of job.log ('' before the first run)."""
        path = self.log_path(jobname)
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    # --- results -----------------------------------------------------------------------------

    @contextmanager
    def staging_results(self, jobname: str) -> Iterator[Path]:
        """Yield an empty folder for the results; on success it replaces results/ whole, else it vanishes."""
        folder = self.require_job(jobname)
        self._remove_staging_folders(folder)
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=_STAGING_PREFIX))
        try:
            yield staging
            staging.chmod(0o755)
            target = self._file(jobname, RESULTS_DIR)
            if target.exists():
                self._swap_in(staging, target)
            else:
                os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def has_results(self, jobname: str) -> bool:
        """True when the job has a results/ folder."""
        return self._file(jobname, RESULTS_DIR).is_dir()

    def discard_partial(self, jobname: str) -> None:
        """Remove what a stopped run may leave: staging folders and temporary files of atomic writes."""
        folder = self.require_job(jobname)
        self._remove_staging_folders(folder)
        for leftover in folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)

    def discard_results(self, jobname: str) -> None:
        """Remove results/ and job_info.json (before a re-run, or after a run that did not complete)."""
        self._file(jobname, JOB_INFO_FILE).unlink(missing_ok=True)
        results = self._file(jobname, RESULTS_DIR)
        if results.is_dir():
            self._remove_dir(results)

    def list_results(self, jobname: str) -> list[str]:
        """The files under results/, as sorted relative paths."""
        results = self._file(jobname, RESULTS_DIR)
        if not results.is_dir():
            return []
        return sorted(
            p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file() and not p.is_symlink()
        )

    def result_path(self, jobname: str, relpath: str) -> Path:
        """The path of one result file; refuses anything that leads out of results/."""
        if "\x00" in relpath or relpath.startswith("/") or ".." in Path(relpath).parts:
            raise InvalidInput(f"invalid result file name {relpath!r}")
        path = self._file(jobname, RESULTS_DIR, *Path(relpath).parts)
        results = self._file(jobname, RESULTS_DIR).resolve()
        if not path.resolve().is_relative_to(results) or not path.is_file():
            raise JobNotFound(f"job {jobname} has no result file {relpath}")
        return path

    def read_result_json(self, jobname: str, relpath: str) -> Any:
        """A JSON result file, parsed."""
        return json.loads(self.result_path(jobname, relpath).read_bytes())

    def write_result_file(self, jobname: str, filename: str, data: str | bytes) -> Path:
        """Replace (atomically) one file directly under an existing results/, e.g. a re-rendered report.html."""
        if "/" in filename or "\\" in filename or filename in ("", ".", "..") or "\x00" in filename:
            raise InvalidInput(f"invalid result file name {filename!r}")
        results = self._file(jobname, RESULTS_DIR)
        if not results.is_dir():
            raise JobNotFound(f"job {jobname} has no results yet")
        path = self._file(jobname, RESULTS_DIR, filename)
        atomic_write(path, data)
        return path

    # --- manifest ----------------------------------------------------------------------------

    def write_job_info(self, jobname: str, info: dict[str, Any]) -> None:
        """Write job_info.json atomically."""
        atomic_write(self._file(jobname, JOB_INFO_FILE), json.dumps(info, indent=2, default=str) + "\n")

    def read_job_info(self, jobname: str) -> dict[str, Any]:
        """The job's job_info.json."""
        path = self._file(jobname, JOB_INFO_FILE)
        if not path.is_file():
            raise JobNotFound(f"job {jobname} has no {JOB_INFO_FILE} yet")
        return json.loads(path.read_bytes())
