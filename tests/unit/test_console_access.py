"""Who the local console answers (local/console.py behind local/gateway.py, over real HTTP): this run's
token or a session opened with it, on this gateway's own Host, from its own origin, JSON objects only."""

from __future__ import annotations

import http.client
import json
import stat
import threading

import pytest

from local import console
from local.console import Console
from local.gateway import Gateway

TOKEN = "console-token-for-the-tests"


class Services:
    """The API functions the console calls as an admin: answers live analytics, records each call."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def __call__(self, service, event):
        self.calls.append((service, event["rawPath"]))
        return {"statusCode": 200, "body": json.dumps({"windows": [], "alerts": []})}


@pytest.fixture(scope="module")
def served():
    """One gateway for the module (stopping one takes its poll interval); sessions opened by a test stay."""
    def no_function(service, event):
        raise AssertionError("the console's paths never reach a service's route")

    services = Services()
    server = Gateway(host="127.0.0.1", port=0, invoke=no_function, verify=lambda token: {},
                     health=lambda: (200, {}),
                     console=Console(bootstrap="127.0.0.1:1", invoke_api=services, token=TOKEN))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, services
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def services(served):
    served[1].calls.clear()
    return served[1]


@pytest.fixture
def gateway(served, services):
    return served[0]


def call(gateway: Gateway, method: str, path: str, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request as sent (a Host given in ``headers`` replaces the real one); status, headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def own_origin(gateway: Gateway) -> str:
    return f"http://127.0.0.1:{gateway.port}"


def log_in(gateway: Gateway) -> dict[str, str]:
    """The Cookie header of a session opened with the token."""
    status, headers, _ = call(gateway, "GET", f"/console/login?token={TOKEN}")
    assert status == 303, status
    return {"Cookie": headers["Set-Cookie"].split(";")[0]}


PATHS = ["/console", "/console/", "/console/static/console.js", "/console/vendor/mermaid.min.js",
         "/console/api/map", "/console/api/dlq", "/console/api/analytics", "/console/api/story?q=o1"]
REDRIVE = "/console/api/dlq/redrive"
JSON = {"Content-Type": "application/json"}
NOT_A_QUEUE = json.dumps({"queue": "no.such-queue", "messageId": "m1"}).encode()  # answered by the handler: 422


# --- the token ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_every_console_path_wants_the_token(gateway, services, path):
    status, headers, body = call(gateway, "GET", path)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    if path.startswith("/console/api/"):
        assert "console-token" in json.loads(body)["message"]
    else:  # a page a browser shows: how to get in
        assert headers["Content-Type"].startswith("text/html") and b"/console/login?token=" in body
    assert services.calls == []


def test_a_post_without_the_token_is_refused_before_its_body_is_read(gateway, services):
    assert call(gateway, "POST", REDRIVE, {**JSON, "Origin": own_origin(gateway)}, NOT_A_QUEUE)[0] == 401


def test_a_wrong_token_or_an_unknown_session_is_refused(gateway, services):
    assert call(gateway, "GET", "/console/api/analytics", bearer("not-the-token"))[0] == 401
    assert call(gateway, "GET", "/console/api/analytics", {"Authorization": TOKEN})[0] == 401  # no scheme
    status, headers, _ = call(gateway, "GET", "/console/login?token=not-the-token")
    assert status == 401 and "Set-Cookie" not in headers
    assert call(gateway, "GET", "/console/login?token=")[0] == 401
    assert call(gateway, "GET", "/console/login?token=%C3%A9t%C3%A9")[0] == 401  # not ASCII: still a 401
    forged = {"Cookie": f"{console.ConsoleAccess.cookie_name(gateway.port)}={TOKEN}"}  # the token is no session
    assert call(gateway, "GET", "/console/api/analytics", forged)[0] == 401
    assert services.calls == []


def test_the_bearer_token_serves_the_page_and_the_api(gateway, services):
    status, headers, body = call(gateway, "GET", "/console", bearer())
    assert status == 200 and b"<title>shopstream console</title>" in body
    assert headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    status, _, body = call(gateway, "GET", "/console/api/analytics?minutes=5", bearer())
    assert (status, json.loads(body)) == (200, {"windows": [], "alerts": []})
    assert services.calls == [("audit", "/analytics/live")]
    status, _, body = call(gateway, "POST", REDRIVE, {**bearer(), **JSON}, NOT_A_QUEUE)  # scripts send no Origin
    assert status == 422 and "dead-letter queues" in json.loads(body)["message"]


def test_the_token_opens_a_session_in_an_http_only_strict_cookie(gateway, services):
    status, headers, _ = call(gateway, "GET", f"/console/login?token={TOKEN}")
    assert status == 303 and headers["Location"] == "/console"  # the token leaves the address bar
    cookie = [part.strip() for part in headers["Set-Cookie"].split(";")]
    name, _, session = cookie[0].partition("=")
    assert name == f"shopstream_console_{gateway.port}" and len(session) >= 32 and TOKEN not in session
    assert {"HttpOnly", "SameSite=Strict", "Path=/console"} <= set(cookie)
    with_session = {"Cookie": f"theme=dark; other app={{\"json\": 1}}; {cookie[0]}"}  # other apps' cookies too
    assert call(gateway, "GET", "/console", with_session)[0] == 200
    assert call(gateway, "GET", "/console/static/console.css", with_session)[0] == 200
    assert call(gateway, "GET", "/console/api/analytics", with_session)[0] == 200
    status, _, _ = call(gateway, "POST", REDRIVE, {**with_session, **JSON, "Origin": own_origin(gateway)},
                        NOT_A_QUEUE)
    assert status == 422  # past every check, answered by the redrive itself
    second = log_in(gateway)
    assert second != {"Cookie": cookie[0]} and call(gateway, "GET", "/console", second)[0] == 200


def test_a_sessions_state_changing_request_must_carry_the_console_origin(gateway):
    session = log_in(gateway)
    status, _, body = call(gateway, "POST", REDRIVE, {**session, **JSON}, NOT_A_QUEUE)
    assert status == 403 and "own pages" in json.loads(body)["message"]


# --- Host, Origin, Sec-Fetch-Site -----------------------------------------------------------------
@pytest.mark.parametrize("host", ["attacker.example:{port}", "rebound.attacker.example", "127.0.0.1",
                                  "127.0.0.1:1{port}", "localhost.attacker.example:{port}", ""])
def test_a_foreign_host_is_refused_even_with_the_token(gateway, services, host):
    # DNS rebinding: a page of attacker.example whose name now resolves to 127.0.0.1 sends its own Host.
    for method, path, body in (("GET", "/console", None), ("GET", "/console/api/analytics", None),
                               ("GET", f"/console/login?token={TOKEN}", None), ("POST", REDRIVE, NOT_A_QUEUE)):
        status, headers, _ = call(gateway, method, path, {"Host": host.format(port=gateway.port), **bearer(), **JSON},
                                  body)
        assert status == 403 and "Set-Cookie" not in headers, (method, path)
    assert services.calls == []


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_the_gateways_own_host_is_served(gateway, host):
    own_host = {"Host": host.format(port=gateway.port)}
    assert call(gateway, "GET", "/console/api/analytics", {**own_host, **bearer()})[0] == 200


@pytest.mark.parametrize("origin", ["http://attacker.example", "http://localhost:3000", "http://127.0.0.1",
                                    "https://127.0.0.1:{port}", "null"])
def test_a_foreign_origin_is_refused_even_with_the_token(gateway, services, origin):
    session = log_in(gateway)
    foreign = {"Origin": origin.format(port=gateway.port)}
    for authenticated in (bearer(), session):
        assert call(gateway, "GET", "/console/api/analytics", {**authenticated, **foreign})[0] == 403
        assert call(gateway, "POST", REDRIVE, {**authenticated, **JSON, **foreign}, NOT_A_QUEUE)[0] == 403
    assert services.calls == []


@pytest.mark.parametrize("site", ["cross-site", "same-site"])  # same-site: any other port of this host
def test_a_request_from_another_sites_page_is_refused(gateway, services, site):
    session = log_in(gateway)
    assert call(gateway, "GET", "/console/api/analytics", {**session, "Sec-Fetch-Site": site})[0] == 403
    assert call(gateway, "GET", "/console", {**session, "Sec-Fetch-Site": site})[0] == 403
    assert services.calls == []


@pytest.mark.parametrize("origin", ["http://127.0.0.1:{port}", "http://localhost:{port}"])
def test_the_consoles_own_origin_is_served(gateway, origin):
    session = log_in(gateway)
    own = {"Origin": origin.format(port=gateway.port), "Sec-Fetch-Site": "same-origin"}
    assert call(gateway, "GET", "/console/api/analytics", {**session, **own})[0] == 200
    assert call(gateway, "POST", REDRIVE, {**session, **own, **JSON}, NOT_A_QUEUE)[0] == 422
    assert call(gateway, "GET", "/console", {**session, "Sec-Fetch-Site": "none"})[0] == 200  # typed or opened


# --- POST bodies ----------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/json; charset=latin-1",
                                          "application/jsonp"])
def test_a_post_that_is_not_application_json_is_415(gateway, content_type):
    headers = {**bearer(), **({"Content-Type": content_type} if content_type else {})}
    status, _, body = call(gateway, "POST", REDRIVE, headers, NOT_A_QUEUE)
    assert status == 415 and "application/json" in json.loads(body)["message"]


@pytest.mark.parametrize("body", [b"", b"{not json", b'{"queue": "a"', b"\xff\xfe{}", b"[]", b'"queue"', b"null"])
def test_a_post_that_is_not_a_json_object_is_400(gateway, body):
    status, _, answer = call(gateway, "POST", REDRIVE, {**bearer(), "Content-Type": "application/json; charset=utf-8"},
                             body)
    assert status == 400 and "JSON" in json.loads(answer)["message"]


# --- the token file -------------------------------------------------------------------------------
def test_the_token_file_is_the_users_alone_and_goes_with_its_run(tmp_path):
    path = tmp_path / ".local" / "console-token"
    console.save_token("first-run", path)
    assert path.read_text().strip() == "first-run" and stat.S_IMODE(path.stat().st_mode) == 0o600
    console.save_token("second-run", path)
    console.forget_token("first-run", path)  # the first run stops after a second started: the file is the second's
    assert path.read_text().strip() == "second-run"
    console.forget_token("second-run", path)
    assert not path.exists()
    console.forget_token("second-run", path)  # already gone: nothing to do


def test_each_console_has_its_own_random_token():
    first, second = (Console(bootstrap="127.0.0.1:1", invoke_api=Services()).token for _ in range(2))
    assert first != second and len(first) >= 32
