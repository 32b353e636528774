"""Fault hooks for tests: loaded by the job processes (mljob.job_process.main) that tests start, never
by mljob itself. A test puts this folder on sys.path (job processes inherit it) and names the fault in
MLJOB_FAULT="STEP|ACTION|ARGUMENT[|JOBNAME]": when a job's status.json first shows STEP (for that job only,
when JOBNAME is given), the job process does ACTION. STEP "convert-ids": before every gene-ID conversion
(a ConvertIds request) the job process does ACTION.

ACTION: freeze (write its supervisor's pid to the file ARGUMENT and wait, to be killed), truncate or remove
(the file ARGUMENT), fill (the file system of the folder ARGUMENT, to the last byte), no-space (from then
on, writing the web-ready result files fails with ENOSPC), freeze-after-web-files and freeze-before-job-info
(freeze, as above, at those points of the saving step), sleep (ARGUMENT seconds, then go on), hang (wait, to
be stopped), hang-once (hang, unless
the file ARGUMENT exists; it is made first), allocate (take memory, 100 MB at a time, up to ARGUMENT MB,
then wait).
"""

import os
import sys

_FAULT = os.environ.get("MLJOB_FAULT", "")

if _FAULT and any("mljob.job_process" in arg for arg in getattr(sys, "orig_argv", ())):
    import errno
    import time
    from pathlib import Path

    import mljob.job_process as job_process
    from mljob.results_store import ResultsFileStore

    step, action, argument, *only = _FAULT.split("|")
    fired = set()  # the jobs it fired for, in this process

    def _freeze() -> None:
        Path(argument).write_text(str(os.getppid()))  # the supervisor: the test kills the worker
        time.sleep(600)

    def _fill(folder: Path) -> None:
        with (folder / ".filler").open("wb") as handle:
            try:
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC

    def _act() -> None:
        if action == "freeze":
            _freeze()
        elif action == "truncate":
            data = Path(argument).read_bytes()
            Path(argument).write_bytes(data[: len(data) // 3])
        elif action == "remove":
            Path(argument).unlink()
        elif action == "fill":
            _fill(Path(argument))
        elif action == "no-space":

            def no_space(*args, **kwargs):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            job_process.write_web_files = no_space
        elif action == "freeze-after-web-files":
            original_web = job_process.write_web_files

            def write_web_files(*args, **kwargs):
                answer = original_web(*args, **kwargs)
                _freeze()
                return answer

            job_process.write_web_files = write_web_files
        elif action == "sleep":
            time.sleep(float(argument))
        elif action == "hang":
            time.sleep(600)
        elif action == "hang-once":
            if not Path(argument).exists():
                Path(argument).write_text("fired")
                time.sleep(600)
        elif action == "allocate":
            held = []
            for _ in range(int(argument) // 100):
                held.append(bytearray(100 * 1024 * 1024))  # zero-filled: resident at once
                time.sleep(0.05)
            time.sleep(600)
        elif action == "freeze-before-job-info":
            ResultsFileStore.write_job_info = lambda self, jobname, info: _freeze()

    original_update = ResultsFileStore.update_status

    def update_status(self, jobname, state, message="", **kwargs):
        result = original_update(self, jobname, state, message, **kwargs)
        progress = kwargs.get("progress")
        if jobname not in fired and progress is not None and progress.step == step and jobname in (only or [jobname]):
            fired.add(jobname)
            _act()
        return result

    ResultsFileStore.update_status = update_status

    if step == "convert-ids":
        original_convert = job_process.convert_ids

        def convert_ids(*args, **kwargs):
            _act()
            return original_convert(*args, **kwargs)

        job_process.convert_ids = convert_ids
