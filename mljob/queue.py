"""The job queue: an Azure Storage Queue of job messages (and its poison queue), as a transport only.

`JobQueue` creates the queues, sends, deletes and counts messages; what a message holds is
`mljob.messages`' business, and which jobs may be queued is `mljob.enqueue`'s.
Importing this module is cheap: azure.storage.queue is imported when a JobQueue is made.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from mljob import messages
from mljob.errors import QueueUnavailable, SettingsError

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

    from mljob.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_QUEUE_NAME = "jobprocessing"
POISON_SUFFIX = "-poison"
# Azure queue names: 3-63 characters, lower-case letters, digits and single inner hyphens.
_QUEUE_NAME_RE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


class Sent(NamedTuple):
    """A message this process sent: enough to delete it again while no host has received it."""

    id: str
    pop_receipt: str


class Counts(NamedTuple):
    """Approximate numbers of messages in the job queue and in its poison queue."""

    queue: int
    poison: int


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
        from azure.storage.queue import LinearRetry, QueueClient
        from requests.utils import get_environ_proxies

        options: dict[str, Any] = {
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
        """QueueClient of the job queue; it sends and reads message content as it is on the wire."""
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

    def send(self, jobname: str) -> Sent:
        """Put one job's message on the queue, visible at once (creating the queues if missing)."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        content = messages.to_wire(jobname)
        try:
            try:
                message = self._client.send_message(content)
            except ResourceNotFoundError:
                log.info("queue %s did not exist; creating it", self._name)
                self._create_queues()
                message = self._client.send_message(content)
        except (AzureError, OSError) as exc:
            raise self._unavailable(f"send job {jobname}", exc) from None
        return Sent(message.id, message.pop_receipt)

    def delete(self, sent: Sent) -> None:
        """Withdraw a message this process sent; QueueUnavailable when it cannot (a host may have it already)."""
        from azure.core.exceptions import AzureError

        try:
            self._client.delete_message(sent.id, sent.pop_receipt)
        except (AzureError, OSError) as exc:
            raise self._unavailable(f"withdraw message {sent.id}", exc) from None

    def peek_poison(self, count: int = 32) -> list[Any]:
        """The oldest messages of the poison queue (up to 32), left where they are; [] when it does not exist."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            return list(self._poison_client.peek_messages(max_messages=min(count, 32)))
        except ResourceNotFoundError:
            return []
        except (AzureError, OSError) as exc:
            raise self._unavailable(f"read {self.poison_name!r}", exc) from None

    def receive_poison(self, hold_seconds: int = 60) -> list[Any]:
        """Every message of the poison queue, each held invisible for `hold_seconds` (to delete or release)."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        held: list[Any] = []
        try:
            while batch := list(self._poison_client.receive_messages(max_messages=32, visibility_timeout=hold_seconds)):
                held.extend(batch)
                if len(batch) < 32:
                    break
        except ResourceNotFoundError:
            return held
        except (AzureError, OSError) as exc:
            self.release_poison(held)
            raise self._unavailable(f"read {self.poison_name!r}", exc) from None
        return held

    def delete_poison(self, message: Any) -> None:
        """Delete a held poison message."""
        from azure.core.exceptions import AzureError

        try:
            self._poison_client.delete_message(message.id, message.pop_receipt)
        except (AzureError, OSError) as exc:
            raise self._unavailable(f"delete message {message.id} of {self.poison_name!r}", exc) from None

    def release_poison(self, messages_: list[Any]) -> None:
        """Make held poison messages visible again (best effort: they come back when their hold ends anyway)."""
        from azure.core.exceptions import AzureError

        for message in messages_:
            try:
                self._poison_client.update_message(message.id, message.pop_receipt, visibility_timeout=0)
            except (AzureError, OSError):
                log.warning("poison message %s stays hidden until its hold ends", message.id)

    def counts(self) -> Counts:
        """Approximate message counts of the queue and its poison queue (a missing queue counts 0)."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        numbers = []
        for client in (self._client, self._poison_client):
            try:
                numbers.append(client.get_queue_properties().approximate_message_count or 0)
            except ResourceNotFoundError:
                numbers.append(0)
            except (AzureError, OSError) as exc:
                raise self._unavailable(f"count the messages of {client.queue_name!r}", exc) from None
        return Counts(*numbers)

    def _unavailable(self, action: str, exc: BaseException) -> QueueUnavailable:
        return QueueUnavailable(
            f"the queue service could not be reached to {action} "
            f"(queue {self._name!r} at {self.endpoint}): {_reason(exc)}"
        )


@functools.lru_cache(maxsize=8)
def _shared_queue(connection_string: str, queue_name: str) -> JobQueue:
    return JobQueue(connection_string, queue_name)


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
