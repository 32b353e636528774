"""Tell a web app that a job has ended: one JSON POST to the job's callback_url, never failing the job.

A callback goes only to an http/https URL whose host passes `check_url`: when CALLBACK_ALLOWED_HOSTS
is set, the host must be listed; loopback, link-local, private and other non-public addresses are
refused unless the host (or that address) is listed. The host name is resolved and every address
checked. No redirect is followed; each try has a short timeout. A refused or failed callback is
logged (with the reason, the URL escaped) and never fails the job.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from urllib.parse import urlsplit

from mljob.errors import InvalidInput
from mljob.results_store import ResultsFileStore
from mljob.status import JobStatus

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
TRIES = 3


def allowed_hosts(raw: str | None) -> frozenset[str]:
    """The CALLBACK_ALLOWED_HOSTS value as a set of lower-case hosts (brackets of IPv6 literals removed)."""
    hosts = (part.strip().lower().strip("[]") for part in (raw or "").split(","))
    return frozenset(host for host in hosts if host)


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]).split("%")[0] for info in infos})


def check_url(url: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """None when a callback may go to `url`; else the reason it is refused (in words, for the log)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "the URL cannot be parsed"
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme!r} is not http or https"
    if not host:
        return "the URL names no host"
    if parts.username is not None or parts.password is not None:
        return "the URL carries credentials"
    if allowed and host not in allowed:
        return f"host {host!a} is not in CALLBACK_ALLOWED_HOSTS"
    try:
        addresses = _resolve(host, port)
    except (OSError, UnicodeError) as exc:
        return f"host {host!a} cannot be resolved ({type(exc).__name__})"
    if not addresses:
        return f"host {host!a} has no address"
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if getattr(ip, "ipv4_mapped", None):
            ip = ip.ipv4_mapped  # type: ignore[union-attr]
        public = ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)
        if not public and host not in allowed and str(ip) not in allowed:
            kind = "loopback" if ip.is_loopback else "link-local" if ip.is_link_local else "private or reserved"
            return (
                f"host {host!a} resolves to {ip}, a {kind} address, which is refused "
                "unless listed in CALLBACK_ALLOWED_HOSTS"
            )
    return None


def post_status(
    url: str,
    status: JobStatus,
    *,
    timeout: float = TIMEOUT_SECONDS,
    tries: int = TRIES,
    allowed: frozenset[str] = frozenset(),
) -> bool:
    """POST {"jobname","status","code"} to `url` if check_url allows it; retry a few times; False on failure.

    `allowed`: the hosts of CALLBACK_ALLOWED_HOSTS (see `allowed_hosts`); empty allows any public host.
    """
    import requests  # imported on first use: keeps function_app's cold start short

    refused = check_url(url, allowed)
    if refused:
        log.warning(
            "callback for job %s to %s refused: %s; the job itself is unaffected", status.jobname, _shown(url), refused
        )
        return False
    body = status.summary()
    problem = "no try made"
    attempt = 0
    for attempt in range(1, tries + 1):
        try:
            response = requests.post(url, json=body, timeout=timeout, allow_redirects=False)
            if response.status_code < 300:
                log.info("callback for job %s answered %s", status.jobname, response.status_code)
                return True
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500:
                break
        except requests.RequestException as exc:
            problem = type(exc).__name__
        if attempt < tries:
            time.sleep(0.5 * 2 ** (attempt - 1))
    log.warning(
        "callback for job %s failed after %d tries (%s); the job itself is unaffected", status.jobname, attempt, problem
    )
    return False


def _shown(url: str) -> str:
    """The URL for a log line: escaped, its query (which may hold a token) left out, cut to 200 characters."""
    head = url.split("?", 1)[0].split("#", 1)[0]
    text = ascii(head[:200])
    return text + (" (query omitted)" if "?" in url else "")


def notify(store: ResultsFileStore, status: JobStatus, allowed: frozenset[str] = frozenset()) -> None:
    """POST a job's final status to the callback_url of its config, if it has one (hosts as in `post_status`)."""
    try:
        url = store.read_config(status.jobname).callback_url
    except InvalidInput:
        return
    if url:
        try:
            post_status(url, status, allowed=allowed)
        except Exception:  # a callback never fails the job
            log.exception("callback for job %s could not be sent; the job itself is unaffected", status.jobname)
