"""The job queue: an Azure Storage Queue of job names, and the all-or-nothing enqueue every entry point uses.

Messages are the JSON text `{"jobname": "..."}`, base64-encoded on the wire as the Azure Functions host
expects (messageEncoding base64). `decode_message` also accepts `{"jobid": "..."}` and the predecessor's
bare job name. Importing this module is cheap: azure.storage.queue is imported when a JobQueue is made.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mljob.errors import InvalidInput, JobNotFound, JobNotReady, MljobError, SettingsError
from mljob.job import validate_jobname
from mljob.status import State

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

    from mljob.results_store import ResultsFileStore
    from mljob.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_QUEUE_NAME = "jobprocessing"
POISON_SUFFIX = "-poison"
MAX_MESSAGE_BYTES = 4096  # a job message is ~100 bytes; anything much longer is not one
MAX_JOBS_PER_CALL = 1000
BUSY_STATES = frozenset({State.QUEUED, State.RUNNING, State.COMPLETED})
PARALLEL_CALLS = 8  # queue calls and status writes of one enqueue in flight at once
# Azure queue names: 3-63 characters, lower-case letters, digits and single inner hyphens.
_QUEUE_NAME_RE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


class QueueUnavailable(MljobError):
    """The queue service could not be reached or refused the request (HTTP 503); nothing was enqueued."""


# --- messages ----------------------------------------------------------------------------------


def encode_message(jobname: str) -> str:
    """The message text for a job: `{"jobname": "..."}` (the client base64-encodes it on the wire)."""
    return json.dumps({"jobname": validate_jobname(jobname)})


def decode_message(body: str | bytes) -> str:
    """The job name in a queue message body: `{"jobname": ...}`, `{"jobid": ...}` or a bare job name.

    Raises InvalidInput, saying what is wrong, for anything else.
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        raw = bytes(body)
        if len(raw) > MAX_MESSAGE_BYTES:
            raise InvalidInput(_too_long(len(raw)))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"queue message is not UTF-8 text (bad byte at position {exc.start})") from None
    elif isinstance(body, str):
        text = body
        if len(text) > MAX_MESSAGE_BYTES:
            raise InvalidInput(_too_long(len(text.encode("utf-8", "replace"))))
    else:
        raise InvalidInput(f"queue message must be text, got {type(body).__name__}")
    text = text.strip().lstrip("\ufeff").strip()
    if not text:
        raise InvalidInput('queue message is empty; expected {"jobname": "..."} or a job name')
    if text[0] in "{[":
        return _name_from_json(text)
    try:
        return validate_jobname(text)
    except InvalidInput as exc:
        raise InvalidInput(f'queue message is neither {{"jobname": "..."}} nor a job name: {exc}') from None


def _too_long(size: int) -> str:
    return f'queue message is {size:,} bytes; a job message is {{"jobname": "..."}} (at most {MAX_MESSAGE_BYTES:,})'


def _name_from_json(text: str) -> str:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to parse
        raise InvalidInput(f"queue message looks like JSON but is not valid JSON: {_shown(text)}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f'queue message must be a JSON object {{"jobname": "..."}}, got a {_json_type(data)}')
    keys = [key for key in ("jobname", "jobid") if key in data]
    extra = sorted(set(data) - {"jobname", "jobid"})
    if len(keys) != 1 or extra:
        found = ", ".join(repr(k) for k in data) or "no keys"
        raise InvalidInput(f'queue message must be {{"jobname": "..."}} (or {{"jobid": "..."}}); it has {found}')
    value = data[keys[0]]
    if not isinstance(value, str):
        raise InvalidInput(f"queue message: {keys[0]} must be a string, got a {_json_type(value)}")
    return validate_jobname(value.strip())


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _shown(text: str) -> str:
    return ascii(text) if len(text) <= 80 else ascii(text[:80]) + "..."


# --- the queue ---------------------------------------------------------------------------------


class JobQueue:
    """The job queue (and its `-poison` queue) in an Azure Storage account; short timeouts, few retries.

    An unreachable service raises QueueUnavailable within seconds (connection refused: ~1 s; a silent
    host: about (retries + 1) x timeout). No message names the connection string or its key.
    """

    def __init__(
        self,
        connection_string: str,
        queue_name: str = DEFAULT_QUEUE_NAME,
        *,
        timeout: float = 3.0,
        retries: int = 2,
    ):
        if not isinstance(queue_name, str) or not (
            3 <= len(queue_name) <= 63 - len(POISON_SUFFIX) and _QUEUE_NAME_RE.fullmatch(queue_name)
        ):
            raise SettingsError(
                f"invalid queue name {queue_name!r}: use 3 to {63 - len(POISON_SUFFIX)} lower-case letters, "
                "digits and single inner hyphens (QUEUE_NAME)"
            )
        if not connection_string or not isinstance(connection_string, str):
            raise SettingsError("the queue connection string (QUEUECONNECTIONSTRING) is empty")
        self._name = queue_name
        self._client = self._make_client(connection_string, queue_name, timeout, retries)
        self._poison_client = self._make_client(connection_string, self.poison_name, timeout, retries)

    @classmethod
    def from_settings(cls, settings: Settings) -> JobQueue:
        """The queue named by QUEUE_NAME in the account of QUEUECONNECTIONSTRING.

        One per process and pair of settings: a warm function instance reuses its open connections.
        """
        return _shared_queue(settings.require_queue_connection_string(), settings.queue_name)

    @staticmethod
    def _make_client(connection_string: str, queue_name: str, timeout: float, retries: int) -> QueueClient:
        from azure.storage.queue import (
            LinearRetry,
            QueueClient,
            TextBase64DecodePolicy,
            TextBase64EncodePolicy,
        )
        from requests.utils import get_environ_proxies

        options: dict[str, Any] = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
            "retry_policy": LinearRetry(backoff=0.5, random_jitter_range=0.25, retry_total=retries),
            "connection_timeout": timeout,
            "read_timeout": max(timeout, 10.0),
        }
        try:
            client = QueueClient.from_connection_string(connection_string, queue_name, **options)
            # requests would scan os.environ for proxy and CA-bundle variables on every call (~10 % of a
            # send): read them once, here, and let the client use what was read.
            return QueueClient.from_connection_string(
                connection_string,
                queue_name,
                **options,
                use_env_settings=False,
                proxies=get_environ_proxies(client.primary_endpoint) or None,
                connection_verify=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True,
            )
        except (ValueError, TypeError):
            # the SDK's message does not quote the string; neither do we
            raise SettingsError(
                "QUEUECONNECTIONSTRING is not a valid storage connection string: expected "
                "'DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;...' or one with QueueEndpoint=..."
            ) from None

    def __repr__(self) -> str:
        return f"JobQueue({self._name!r} at {self.endpoint})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def poison_name(self) -> str:
        return f"{self._name}{POISON_SUFFIX}"

    @property
    def client(self) -> QueueClient:
        """QueueClient of the job queue; messages are base64 on the wire (as the Functions host expects)."""
        return self._client

    @property
    def poison_client(self) -> QueueClient:
        """QueueClient of `<name>-poison`, where the Functions host moves messages that failed too often."""
        return self._poison_client

    @property
    def endpoint(self) -> str:
        """The queue service's address, without any query (a SAS token) or credentials."""
        parts = urlsplit(self._client.primary_endpoint)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}"

    # --- operations ----------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the queue and its poison queue if they are missing."""
        from azure.core.exceptions import AzureError

        try:
            self._create_queues()
        except (AzureError, OSError) as exc:
            raise self._unavailable(f"create queues {self._name!r} and {self.poison_name!r}", exc) from None

    def _create_queues(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        for client in (self._client, self._poison_client):
            try:
                client.create_queue()
            except ResourceExistsError:
                pass

    def send(self, jobname: str) -> str:
        """Put one job's message on the queue (visible at once); returns the message id."""
        from azure.core.exceptions import AzureError

        text = encode_message(jobname)
        try:
            return self._send(text).id
        except (AzureError, OSError) as exc:
            raise self._unavailable(f"send job {jobname}", exc) from None

    def _send(self, text: str, *, visibility_timeout: int | None = None) -> Any:
        """send_message; creates the queues once if the service says the queue does not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._client.send_message(text, visibility_timeout=visibility_timeout)
        except ResourceNotFoundError:
            log.info("queue %s did not exist; creating it", self._name)
            self._create_queues()
            return self._client.send_message(text, visibility_timeout=visibility_timeout)

    def enqueue(self, store: ResultsFileStore, jobnames: Iterable[str], *, rerun: bool = False) -> list[str]:
        """Queue every job or none of them; mark them `queued`; return their names (duplicates dropped).

        Raises InvalidInput (a bad name, config or gene list), JobNotFound (no such job folder),
        JobNotReady (a job is queued, running or completed and `rerun` is false) before anything is
        written, and QueueUnavailable when a message cannot be sent: the messages already sent are
        withdrawn and every status is put back (a message that cannot be withdrawn is named).

        Every job is marked `queued` before its message is sent, so a worker that receives a message
        always finds its job queued (and its `running` is never overwritten by enqueue).
        """
        from azure.core.exceptions import AzureError

        names = self._check_names(jobnames)
        previous = {name: self._check_job(store, name, rerun) for name in names}
        marked: list[str] = []

        def mark_and_send(name: str) -> Any:
            store.update_status(name, State.QUEUED, "queued for processing")
            marked.append(name)
            try:
                return self._send(encode_message(name))
            except (AzureError, OSError) as exc:
                raise self._unavailable(f"enqueue job {name}", exc) from None

        messages, error = _each(mark_and_send, names)
        if error is not None:
            stuck = self._withdraw([(n, m) for n, m in zip(names, messages, strict=True) if m is not None])
            self._restore_statuses(store, marked, previous)
            if isinstance(error, QueueUnavailable):
                raise QueueUnavailable(f"{error}; {self._nothing_enqueued(stuck, len(names))}") from None
            raise error
        log.info("enqueued %d job(s) on queue %s: %s", len(names), self._name, ", ".join(names))
        return names

    # --- enqueue steps -------------------------------------------------------------------------

    @staticmethod
    def _check_names(jobnames: Iterable[str]) -> list[str]:
        if isinstance(jobnames, (str, bytes)):
            raise InvalidInput("job names must be given as a list, not as one string")
        names: list[str] = []
        for name in jobnames:
            valid = validate_jobname(name)
            if valid not in names:
                names.append(valid)
            if len(names) > MAX_JOBS_PER_CALL:
                raise InvalidInput(f"too many jobs in one request; at most {MAX_JOBS_PER_CALL} can be enqueued at once")
        if not names:
            raise InvalidInput("no job names given: name at least one job to enqueue")
        return names

    @staticmethod
    def _check_job(store: ResultsFileStore, name: str, rerun: bool) -> bytes | None:
        """Raise unless the job can be queued; returns its status.json as it is (see `status_snapshot`)."""
        if not store.exists(name):
            raise JobNotFound(f"job {name} not found; nothing was enqueued")
        store.read_config(name)
        store.read_genes(name)
        store.read_negatives(name)  # validated when the job has any
        snapshot = store.status_snapshot(name)  # PathEscape when status.json links out: never written through
        try:
            status = store.parse_status(name, snapshot)
        except InvalidInput:
            return snapshot  # a missing or corrupt status.json is started anew by update_status
        if status.status in BUSY_STATES and not rerun:
            raise JobNotReady(
                f"job {name} is {status.status.value}; nothing was enqueued (ask for a re-run to queue it again)"
            )
        return snapshot

    def _withdraw(self, sent: list[tuple[str, Any]]) -> list[str]:
        """Delete the messages sent by this call; returns the jobs whose message could not be deleted.

        A delete fails when the service is down or when a worker has already received the message
        (receiving changes its pop receipt): either way that job may still run.
        """
        from azure.core.exceptions import AzureError

        stuck = []
        for name, message in sent:
            try:
                self._client.delete_message(message.id, message.pop_receipt)
            except (AzureError, OSError) as exc:
                stuck.append(name)
                log.warning(
                    "could not withdraw the message of job %s from queue %s (%s); it may still be delivered",
                    name,
                    self._name,
                    _reason(exc),
                )
        return stuck

    @staticmethod
    def _restore_statuses(store: ResultsFileStore, names: list[str], previous: dict[str, bytes | None]) -> None:
        """Put back status.json as it was before this enqueue, unless a worker has moved the job on since."""
        for name in names:
            try:
                if store.read_status(name).status is State.QUEUED:
                    store.restore_status(name, previous[name])
            except Exception:  # the original error is the one to report
                log.exception("could not restore the status of job %s after a failed enqueue", name)

    @staticmethod
    def _nothing_enqueued(stuck: list[str], total: int) -> str:
        if not stuck:
            return "nothing was enqueued" if total == 1 else f"none of the {total} jobs was enqueued"
        return (
            f"no job was left marked queued, but the message of job(s) {', '.join(stuck)} could not be withdrawn "
            "and may still be delivered"
        )

    def _unavailable(self, action: str, exc: BaseException) -> QueueUnavailable:
        return QueueUnavailable(
            f"the queue service could not be reached to {action} "
            f"(queue {self._name!r} at {self.endpoint}): {_reason(exc)}"
        )


@functools.lru_cache(maxsize=8)
def _shared_queue(connection_string: str, queue_name: str) -> JobQueue:
    return JobQueue(connection_string, queue_name)


def _each(work: Callable[[Any], Any], items: list[Any]) -> tuple[list[Any], BaseException | None]:
    """Run `work` on every item, a few at a time (queue round trips and status writes wait on I/O).

    Returns the results in the order of `items` (None where `work` raised) and the first error, if any.
    """
    if len(items) <= 1:  # one job: no pool
        try:
            return [work(item) for item in items], None
        except BaseException as exc:  # reported to the caller, which rolls back
            return [None] * len(items), exc
    with ThreadPoolExecutor(max_workers=min(PARALLEL_CALLS, len(items))) as pool:
        futures = [pool.submit(work, item) for item in items]
    results: list[Any] = []
    error: BaseException | None = None
    for future in futures:
        exc = future.exception()
        results.append(None if exc else future.result())
        error = error or exc
    return results, error


def _reason(exc: BaseException) -> str:
    """A short, secret-free description of a storage error: never the exception text (it may hold URLs)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, ClientAuthenticationError):
        return f"the account refused the credentials (HTTP {exc.status_code}); check QUEUECONNECTIONSTRING"
    if isinstance(exc, HttpResponseError):
        code = getattr(exc, "error_code", None) or (exc.reason or "")
        return f"the service answered HTTP {exc.status_code} {code}".rstrip()
    if isinstance(exc, ServiceRequestError):
        return "no connection (refused, timed out or the host name is unknown)"
    if isinstance(exc, ServiceResponseError):
        return "the connection broke before the service answered"
    return f"{type(exc).__name__}"
