"""The operator console: one self-contained HTML page (GET /api/console) over the app's own JSON API.

The page lists jobs (status, progress, attempts, times), the queue and its poison queue, and lets an operator
open a report, read the tail of a job.log, cancel, re-run and requeue from poison. Its script reads the
function key from the page's own `?code=`, keeps it in memory and sends it as `x-functions-key` on every
call; it requests nothing but this app's API. Everything a job folder holds reaches the page through
`textContent`, never as markup. The page is the same for every caller (no key, no data in it): the
answer's strict Content-Security-Policy allows only its own inline script and style (a fresh nonce per
answer) and connections to its own origin.
Importing this module stays cheap: jinja2 is imported when the page is rendered.
"""

from __future__ import annotations

import functools
import secrets
from typing import TYPE_CHECKING

from mljob.templating import template_environment

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "console.html.j2"
POLL_SECONDS = 3
PAGE_SIZE = 50


def content_security_policy(nonce: str) -> str:
    """The page's CSP: its nonce-carrying inline script and style, fetches to its own origin, nothing else."""
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
        "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def render() -> tuple[str, dict[str, str]]:
    """The console page and the headers it must be served with (a fresh nonce each time)."""
    nonce = secrets.token_urlsafe(18)
    html = _environment().get_template(TEMPLATE).render(nonce=nonce, poll_ms=POLL_SECONDS * 1000, page_size=PAGE_SIZE)
    headers = {
        "Content-Security-Policy": content_security_policy(nonce),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",  # the key is in the page's URL
        "X-Content-Type-Options": "nosniff",
    }
    return html, headers


@functools.cache
def _environment() -> jinja2.Environment:
    """The templates of mljob/templates/, made once."""
    return template_environment()
