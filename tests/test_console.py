"""The operator console page (GET /api/console), in-process: its Content-Security-Policy and nonce, nothing
fetched from anywhere, no key in it, the script writing job data only as text; and function_app.console's answer.
The page in a real browser against a real host: tests/test_console_browser.py."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import azure.functions as func
from app_functions import app_functions

from mljob import console

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "mljob" / "templates"
PAGE_FILES = ["console.html.j2", "console.js", "console.css", "base.html.j2"]


class Tags(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def directives(policy: str) -> dict[str, str]:
    return dict(part.strip().partition(" ")[::2] for part in policy.split(";"))


def test_the_policy_is_strict_and_its_nonce_is_on_the_one_inline_script_and_style():
    html, headers = console.render()
    policy = directives(headers["Content-Security-Policy"])
    nonce = re.fullmatch(r"'nonce-([A-Za-z0-9_-]{16,})'", policy["script-src"]).group(1)
    assert policy == {
        "default-src": "'none'",
        "script-src": f"'nonce-{nonce}'",
        "style-src": f"'nonce-{nonce}'",
        "connect-src": "'self'",
        "img-src": "data:",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    found = tags(html)
    scripts = [attrs for tag, attrs in found if tag == "script"]
    styles = [attrs for tag, attrs in found if tag == "style"]
    assert scripts == [{"nonce": nonce}] and styles == [{"nonce": nonce}]  # inline (no src), with the nonce
    assert not [attrs for _, attrs in found if "style" in attrs]  # no style attribute: the CSP would refuse it
    assert not [attrs for _, attrs in found if any(name.startswith("on") for name in attrs)]  # no inline handlers
    # the one link: an empty icon, so that the browser asks for no /favicon.ico
    assert [(tag, attrs.get("href")) for tag, attrs in found if tag == "link"] == [("link", "data:,")]
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_a_fresh_nonce_per_answer():
    (first, a), (second, b) = console.render(), console.render()
    assert a["Content-Security-Policy"] != b["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", a["Content-Security-Policy"]).group(1)
    assert nonce in first and nonce not in second


def test_the_page_is_whole_and_fetches_nothing_from_anywhere():
    html, _ = console.render()
    # the script and style go in as written (a template tag in them would have changed them)
    assert (TEMPLATES / "console.js").read_text() in html and (TEMPLATES / "console.css").read_text() in html
    assert not re.findall(r"https?://", html)  # no URL of any host: no script, font, image or link elsewhere
    linked = [(tag, name, value) for tag, attrs in tags(html) for name, value in attrs.items()]
    assert [link for link in linked if link[1] in ("src", "href", "action", "formaction", "srcset")] == [
        ("link", "href", "data:,")
    ]
    assert "@import" not in html and "url(" not in html
    script = (TEMPLATES / "console.js").read_text()
    assert "http:" not in script and "https:" not in script and "//" + "cdn" not in script
    for path in re.findall(r"[\"'](/api/[^\"'?]*)", script):  # every call goes to this app's API
        assert path.startswith(("/api/jobs", "/api/queue", "/api/enqueue")), path


def test_job_data_enters_the_page_as_text_only():
    script = (TEMPLATES / "console.js").read_text()
    code = "\n".join(line for line in script.splitlines() if not line.strip().startswith("//"))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "srcdoc"):
        assert sink not in code, sink
    assert "textContent" in code


def test_the_key_is_never_in_the_page(monkeypatch):
    key = "secret-console-key-1234567890"
    monkeypatch.setenv("MLJOB_FUNCTION_KEY", key)
    html, headers = console.render()
    assert key not in html and key not in str(headers)
    for name in PAGE_FILES:  # the templates hold no key and no way to write one into the page
        text = (TEMPLATES / name).read_text()
        assert key not in text and "MLJOB_FUNCTION_KEY" not in text
    script = (TEMPLATES / "console.js").read_text()
    # the key is read from the page's URL and sent as a header; the only other use is a report opened in a tab
    uses = [line.strip() for line in script.splitlines() if re.search(r"\bKEY\b", line)]
    assert len(uses) == 3, uses
    assert 'get("code")' in uses[0] and 'headers["x-functions-key"] = KEY' in uses[1]
    assert "?code=" in uses[2] and "encodeURIComponent(KEY)" in uses[2] and "window.open(" in script


def test_the_function_answers_the_page_with_its_headers():
    request = func.HttpRequest("GET", "http://localhost/api/console?code=the-key-of-the-caller", body=b"")
    response = app_functions()["console"].get_user_function()(request)
    assert response.status_code == 200
    assert response.mimetype == "text/html" and response.charset == "utf-8"
    html = response.get_body().decode("utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<title>mljob console</title>" in html
    assert "the-key-of-the-caller" not in html
    headers = dict(response.headers)
    nonce = re.search(r"'nonce-([^']+)'", headers["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}">' in html and f'<style nonce="{nonce}">' in html
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_binding_is_function_level():
    import json

    binding = json.loads(app_functions()["console"].get_function_json())["bindings"][0]
    assert binding["route"] == "console" and binding["methods"] == ["GET"] and binding["authLevel"] == "FUNCTION"


def test_importing_the_module_leaves_jinja2_out():
    code = "import sys, mljob.console; print('jinja2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"
