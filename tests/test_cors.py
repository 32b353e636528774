"""CORS in `mljob serve` (CORS_ALLOWED_ORIGINS), as Azure's platform CORS answers it: real hosts, real HTTP.

One dev host per setting value (tests/devhost_app, with MLJOB_FUNCTION_KEY set), shared by the tests of this
module: GET /api/ping is ANONYMOUS, POST /api/echo/{name} is FUNCTION level.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

pytest.importorskip("azure.functions")

from devhost_process import DevHostProcess

from mljob.errors import DevHostError
from mljob.tools.devhost import CorsPolicy, DevHost, HttpRoute, allow_methods, compile_route, with_cors

REPO = Path(__file__).resolve().parent.parent
APP_DIR = REPO / "tests" / "devhost_app"
KEY = "cors-test-key"
VITE = "http://localhost:5173"
WEB = "https://app.example.org"
STRANGER = "https://evil.example.com"


def serve(tmp: Path, azurite_conn: str, origins: str) -> DevHostProcess:
    """tests/devhost_app under `mljob serve` with CORS_ALLOWED_ORIGINS=origins and a function key."""
    env = {
        **os.environ,
        "TEST_QUEUE": f"cors-{uuid.uuid4().hex[:12]}",  # never sent to: the queue trigger only polls it
        "TEST_QUEUE_CONN": azurite_conn,
        "DEVHOST_TEST_OUT": str(tmp / "out.jsonl"),
        "MLJOB_FUNCTION_KEY": KEY,
        "CORS_ALLOWED_ORIGINS": origins,
    }
    return DevHostProcess(tmp, env, APP_DIR)


@pytest.fixture(scope="module")
def listed(azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHostProcess]:
    """A host allowing two origins, written with spaces, upper case and a trailing slash."""
    host = serve(
        tmp_path_factory.mktemp("cors-listed"), azurite.connection_string, f" {VITE} , HTTPS://App.Example.org/"
    )
    yield host
    assert host.stop() == 0


@pytest.fixture(scope="module")
def anyone(azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHostProcess]:
    """A host allowing any origin (*)."""
    host = serve(tmp_path_factory.mktemp("cors-any"), azurite.connection_string, "*")
    yield host
    assert host.stop() == 0


def preflight(
    url: str, origin: str, method: str = "POST", headers: str | None = "content-type", session=requests
) -> requests.Response:
    """What a browser sends before a cross-origin POST with Content-Type: application/json."""
    sent = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        sent["Access-Control-Request-Headers"] = headers
    return session.options(url, headers=sent, timeout=5)


def cors_headers(response: requests.Response) -> dict[str, str]:
    """The Access-Control-* headers of an answer, names lower-cased."""
    return {k.lower(): v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


# --- preflights ---------------------------------------------------------------------------------------


def test_preflight_from_an_allowed_origin_needs_no_key(listed: DevHostProcess) -> None:
    answer = preflight(f"{listed.url}/api/echo/x", VITE)
    assert answer.status_code == 204 and answer.content == b""
    assert "Content-Length" not in answer.headers  # a 204 has no body
    assert cors_headers(answer) == {
        "access-control-allow-origin": VITE,
        "access-control-allow-methods": "POST, OPTIONS",
        "access-control-allow-headers": "content-type",
        "access-control-max-age": "600",
    }
    assert answer.headers["Vary"] == "Origin"
    # the real call without a key is still refused, and the browser may read why
    refused = requests.post(f"{listed.url}/api/echo/x", json={}, headers={"Origin": VITE}, timeout=5)
    assert refused.status_code == 401 and "error" in refused.json()
    assert refused.headers["Access-Control-Allow-Origin"] == VITE
    assert "OPTIONS /api/echo/x 204 " in listed.log()


def test_origins_match_case_insensitively_on_scheme_and_host_and_exactly_on_port(listed: DevHostProcess) -> None:
    url = f"{listed.url}/api/echo/x"
    for origin in (WEB, "https://APP.example.ORG", "HTTP://LocalHost:5173"):
        assert preflight(url, origin).headers.get("Access-Control-Allow-Origin") == origin, origin
    refused = ("http://localhost:5174", "http://localhost", "http://app.example.org", "https://example.org", "null")
    for origin in refused:
        answer = preflight(url, origin)
        assert answer.status_code == 204 and cors_headers(answer) == {}, origin


def test_preflight_from_a_disallowed_origin_is_204_without_allow_headers(listed: DevHostProcess) -> None:
    answer = preflight(f"{listed.url}/api/echo/x", STRANGER)
    assert answer.status_code == 204 and answer.content == b""
    assert cors_headers(answer) == {}
    assert answer.headers["Vary"] == "Origin"


def test_preflight_allow_headers_echo_plain_names_only(listed: DevHostProcess) -> None:
    url = f"{listed.url}/api/echo/x"
    echoed = preflight(url, VITE, headers="Content-Type,X-Functions-Key ,  x-request-id")
    assert echoed.headers["Access-Control-Allow-Headers"] == "Content-Type, X-Functions-Key, x-request-id"
    for odd in ("content-type; x", "content-type,,x", None):
        answer = preflight(url, VITE, headers=odd)
        assert answer.headers["Access-Control-Allow-Headers"] == "Content-Type, x-functions-key", odd


def test_preflight_lists_the_methods_of_the_path(listed: DevHostProcess) -> None:
    answer = preflight(f"{listed.url}/api/ping", VITE, method="GET", headers=None)
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS"


def test_preflight_to_an_unknown_path_is_404(listed: DevHostProcess) -> None:
    answer = preflight(f"{listed.url}/api/nothing/here", VITE)
    assert answer.status_code == 404 and "error" in answer.json()
    assert answer.headers["Access-Control-Allow-Origin"] == VITE  # an answer to an allowed origin
    assert "Access-Control-Allow-Methods" not in answer.headers


def test_options_without_cors_headers_is_unchanged(listed: DevHostProcess) -> None:
    url = f"{listed.url}/api/echo/x"
    plain = requests.options(url, timeout=5)
    assert plain.status_code == 405 and plain.headers["Allow"] == "POST" and cors_headers(plain) == {}
    origin_only = requests.options(url, headers={"Origin": VITE}, timeout=5)  # no Access-Control-Request-Method
    assert origin_only.status_code == 405 and origin_only.headers["Allow"] == "POST"
    assert origin_only.headers["Access-Control-Allow-Origin"] == VITE  # an actual request from an allowed origin


# --- actual requests ----------------------------------------------------------------------------------


def test_answers_to_an_allowed_origin_carry_acao_and_vary(listed: DevHostProcess) -> None:
    with requests.Session() as browser:  # preflight then call on one kept-alive connection, as a browser does
        assert preflight(f"{listed.url}/api/echo/x", VITE, session=browser).status_code == 204
        echo = browser.post(
            f"{listed.url}/api/echo/x",
            json={"a": 1},
            headers={"Origin": VITE, "x-functions-key": KEY},
            timeout=5,
        )
        ping = browser.get(f"{listed.url}/api/ping", headers={"Origin": VITE}, timeout=5)
    assert echo.status_code == 201 and echo.json()["body"] == '{"a": 1}' and echo.headers["X-Echo"] == "yes"
    assert (ping.status_code, ping.json()) == (200, {"pong": True})
    for answer in (echo, ping):
        assert cors_headers(answer) == {
            "access-control-allow-origin": VITE,
            "access-control-expose-headers": "Location, Retry-After",
        }
        assert answer.headers["Vary"] == "Origin"
    missing = requests.get(f"{listed.url}/api/nothing", headers={"Origin": WEB}, timeout=5)
    assert missing.status_code == 404 and missing.headers["Access-Control-Allow-Origin"] == WEB


def test_answers_to_a_disallowed_origin_carry_no_cors_headers(listed: DevHostProcess) -> None:
    ping = requests.get(f"{listed.url}/api/ping", headers={"Origin": STRANGER}, timeout=5)
    assert (ping.status_code, ping.json()) == (200, {"pong": True})  # the function runs: the browser enforces CORS
    assert cors_headers(ping) == {} and "Vary" not in ping.headers
    echo = requests.post(
        f"{listed.url}/api/echo/x", data=b"hi", headers={"Origin": STRANGER, "x-functions-key": KEY}, timeout=5
    )
    assert echo.status_code == 201 and cors_headers(echo) == {}
    no_origin = requests.get(f"{listed.url}/api/ping", timeout=5)
    assert cors_headers(no_origin) == {} and "Vary" not in no_origin.headers


def test_the_start_log_names_the_allowed_origins(listed: DevHostProcess, anyone: DevHostProcess) -> None:
    assert f"CORS: allowed origins {VITE}, HTTPS://App.Example.org\n" in listed.log()
    assert "CORS: any origin (*)\n" in anyone.log()


# --- any origin ---------------------------------------------------------------------------------------


def test_star_allows_any_origin_with_a_star(anyone: DevHostProcess) -> None:
    answer = preflight(f"{anyone.url}/api/echo/x", STRANGER)
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert answer.headers["Vary"] == "Origin"
    ping = requests.get(f"{anyone.url}/api/ping", headers={"Origin": "null"}, timeout=5)
    assert ping.status_code == 200
    assert (ping.headers["Access-Control-Allow-Origin"], ping.headers["Vary"]) == ("*", "Origin")
    assert cors_headers(requests.get(f"{anyone.url}/api/ping", timeout=5)) == {}  # no Origin: not a CORS request


# --- the setting, in process --------------------------------------------------------------------------


def test_no_setting_allows_no_origin() -> None:
    for text in (None, "", " , "):
        policy = CorsPolicy.parse(text)
        assert policy.describe() == "CORS: no origin allowed"
        assert not policy.allows(VITE) and not policy.allows("null")


def test_an_entry_that_is_no_origin_stops_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for wrong in ("app.example.org", "https://app.example.org/path", "https://app.example.org:port"):
        with pytest.raises(DevHostError, match="CORS_ALLOWED_ORIGINS"):
            CorsPolicy.parse(f"{VITE},{wrong}")
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "localhost:5173")
    with pytest.raises(DevHostError, match="'localhost:5173' is not an origin"):
        DevHost(APP_DIR, port=0)  # before the app is loaded or a port bound


def test_the_host_owns_the_cors_headers() -> None:
    from_function = [("Access-Control-Allow-Origin", "*"), ("Vary", "Accept-Encoding"), ("X-Echo", "yes")]
    allowed = [("Access-Control-Allow-Origin", VITE), ("Vary", "Origin")]
    assert with_cors(from_function, allowed) == [
        ("X-Echo", "yes"),
        ("Access-Control-Allow-Origin", VITE),
        ("Vary", "Accept-Encoding, Origin"),
    ]
    assert with_cors(from_function, []) == [("Vary", "Accept-Encoding"), ("X-Echo", "yes")]


def test_a_route_of_any_method_allows_the_usual_methods() -> None:
    route = HttpRoute("any", "any", compile_route("any"), None, "anonymous", "req", print)
    assert allow_methods([route]) == "DELETE, GET, HEAD, PATCH, POST, PUT, OPTIONS"
