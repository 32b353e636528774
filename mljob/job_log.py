"""job.log: while a run works on a job, its thread's log lines (mljob's, geneplexus's, ...) go to the job's file."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from mljob.results_store import ResultsFileStore


class _ThisThread(logging.Filter):
    """Lets through only records from the thread running this job (jobs may share a process)."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread


@contextmanager
def job_log(store: ResultsFileStore, jobname: str) -> Iterator[None]:
    """Send this thread's log lines to the job's job.log while the block runs (appended; several processes may).

    The handler sits on the root logger: GenePlexus resets the level of every stream handler on its
    own logger (file handlers included), so a handler there would lose its INFO lines.
    """
    handler = store.log_handler(jobname)
    handler.addFilter(_ThisThread())
    mljob_logger = logging.getLogger("mljob")
    if mljob_logger.level == logging.NOTSET:
        mljob_logger.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
