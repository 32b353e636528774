"""Every error mljob raises on purpose: its message is complete and written for the person who caused it.

Entry points map these classes to answers in one table each: the HTTP API (`mljob.api.HTTP_STATUS`) and
the command line (`mljob.tools.cli.EXIT_CODES`). Anything else is a bug, logged with its traceback.
"""

from __future__ import annotations

from typing import Any


class MljobError(Exception):
    """Base class: the message is complete and safe to show to a user."""


# --- bad input (HTTP 400, CLI exit 2) -------------------------------------------------------------


class InvalidInput(MljobError):
    """A job name, config, gene list or argument is not acceptable (CLI exit 2, HTTP 400)."""


class PathEscape(InvalidInput):
    """A job folder or a file in it is a link (or resolves) out of where it must stay; nothing was touched."""


class UsageError(InvalidInput):
    """A command-line argument is wrong."""


class LegacyJobFolder(InvalidInput):
    """A 2023 GenePlexus web app job folder (`<job>_job_config.json`, GenePlexus 1.x parameters): not runnable."""


class RequestTooLarge(InvalidInput):
    """A request body over the size accepted (HTTP 413); it was not parsed."""


class SettingsError(MljobError):
    """A setting (environment variable) is missing or wrong."""


class HostJsonError(MljobError):
    """host.json is not JSON, or holds a value the Functions host does not take; the message names it."""


# --- jobs ------------------------------------------------------------------------------------------


class JobNotFound(MljobError):
    """No job folder of that name exists (HTTP 404)."""


class JobExists(MljobError):
    """A job of that name exists already (HTTP 409)."""


class JobNotReady(MljobError):
    """The job exists but is not in a state that allows what was asked (e.g. no results yet; HTTP 409)."""


class JobBusy(JobNotReady):
    """A live run elsewhere holds the job's run lease; it is not started twice."""


class JobFinished(JobNotReady):
    """The job is completed or cancelled, and the caller asked not to run it again (a redelivered message)."""


class JobError(MljobError):
    """A job cannot succeed as asked; retrying will not help (bad config, too few genes, no data)."""


# --- job control: how a supervised run ended, other than by completing (see mljob/supervisor.py) ---------


class RunOutOfMemory(JobError):
    """The job's process went over JOB_MEMORY_MB, or the kernel's OOM killer stopped it: failed, not retried."""


class RunTimedOut(MljobError):
    """The run went past JOB_TIMEOUT_SECONDS and was stopped: final state `timeout`, not retried."""


class RunCancelled(MljobError):
    """The run was stopped because someone cancelled the job: final state `cancelled`."""


class JobProcessDied(MljobError):
    """The job's process died of a signal (a crash in a native library, a kill from outside): retried."""


class JobWorkFailed(MljobError):
    """The job's work raised an unexpected error in its process (details in job.log): retried."""


# --- services mljob talks to (HTTP 503, CLI exit 3) ---------------------------------------------------


class ServiceUnavailable(MljobError):
    """A service the call needs could not be reached or refused the call; nothing was changed."""


class QueueUnavailable(ServiceUnavailable):
    """The queue service could not be reached or refused the request (HTTP 503); nothing was enqueued."""


class TooManyWaiting(ServiceUnavailable):
    """WEB_MAX_WAITING web-app calls are waiting on this instance already (HTTP 503 with Retry-After)."""


class TooManyConversions(ServiceUnavailable):
    """The gene-ID conversions this instance runs at once are all taken, past the wait (HTTP 503 with Retry-After)."""


class LaunchError(ServiceUnavailable):
    """The enqueue endpoint could not be reached, or failed (HTTP 5xx, 401/403, unexpected answers)."""


class ShareError(MljobError):
    """The Azure Files share could not be filled as asked (CLI exit 1)."""


class ShareUnreachable(ShareError, ServiceUnavailable):
    """The Azure Files endpoint could not be reached, or kept failing (try again later; CLI exit 3)."""


class UploadFailed(ShareError):
    """Some files could not be uploaded; ``.report`` (a ``mljob.tools.share.UploadReport``) lists them."""

    def __init__(self, message: str, report: Any):
        super().__init__(message)
        self.report = report


# --- the development host ----------------------------------------------------------------------------


class DevHostError(MljobError):
    """`mljob serve` cannot serve the app as it is; the message says what to fix."""
