"""Remote check fallback (docs/http-api.md): bounded by check_timeout_ms, fail closed by default, no
receipt; 4xx, 413 included, raise AllowlyAPIError."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

import allowly
from allowly import AllowlyAPIError
from allowly.sync import Allowly

from conftest import Server


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A socket that accepts connections (kernel backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.fixture
def refused() -> str:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def status_server(status: int) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(length)
            body = b'{"error":{"code":"boom","message":"server error","fields":[]}}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.mark.parametrize("timeout_ms", [200, 500])
def test_timeout_fails_closed_within_bound(blackhole: str, timeout_ms: int) -> None:
    client = Allowly("allowly.runtime.ws_x.secret", base_url=blackhole, check_timeout_ms=timeout_ms)
    started = time.perf_counter()
    response = client.check(authorization_id="auth_1", actions=["email.send"])
    elapsed_ms = (time.perf_counter() - started) * 1000
    result = response.results["email.send"]
    assert (result.decision, result.reason) == ("deny", "fallback_closed_timeout")
    assert result.is_fallback is True
    assert result.fallback_mode == "fail_closed"
    assert result.receipt is None
    assert response.engine_version == "sdk_fallback"
    assert elapsed_ms <= timeout_ms + 100, elapsed_ms


def test_fail_open_mapping_allows_with_the_flag(blackhole: str) -> None:
    client = Allowly(
        "allowly.runtime.ws_x.secret",
        base_url=blackhole,
        check_timeout_ms=200,
        fallback_by_action={"web.search": "fail_open"},
    )
    response = client.check(authorization_id="auth_1", actions=["web.search", "email.send"])
    search, email = response.results["web.search"], response.results["email.send"]
    assert (search.decision, search.reason, search.is_fallback) == ("allow", "fallback_open_timeout", True)
    assert search.receipt is None and search.fallback_mode == "fail_open"
    assert (email.decision, email.reason) == ("deny", "fallback_closed_timeout")


def test_async_timeout_within_bound(blackhole: str) -> None:
    async def main() -> float:
        async with allowly.Allowly("allowly.runtime.ws_x.secret", base_url=blackhole, check_timeout_ms=300) as c:
            started = time.perf_counter()
            response = await c.check(authorization_id="auth_1", actions=["email.send"])
            assert response.results["email.send"].reason == "fallback_closed_timeout"
            return (time.perf_counter() - started) * 1000

    assert asyncio.run(main()) <= 400


def test_refused_port_is_unreachable(refused: str) -> None:
    client = Allowly(
        "allowly.runtime.ws_x.secret", base_url=refused, fallback_by_action={"web.search": "fail_open"}
    )
    response = client.check(authorization_id="auth_1", actions=["email.send", "web.search"])
    assert response.results["email.send"].reason == "fallback_closed_unreachable"
    assert response.results["email.send"].decision == "deny"
    assert response.results["web.search"].reason == "fallback_open_unreachable"
    assert all(r.is_fallback and r.receipt is None for r in response.results.values())


@pytest.mark.parametrize("status,reason", [(500, "fallback_closed_unreachable"), (503, "fallback_closed_unreachable"),
                                           (408, "fallback_closed_timeout")])
def test_5xx_and_408_fall_back(status: int, reason: str) -> None:
    httpd, url = status_server(status)
    try:
        response = Allowly("allowly.runtime.ws_x.secret", base_url=url).check(authorization_id="a", actions=["x"])
        assert response.results["x"].reason == reason
        assert response.results["x"].is_fallback
    finally:
        httpd.shutdown()


@pytest.mark.parametrize("status", [400, 404, 409, 422, 429])
def test_4xx_raise(status: int) -> None:
    httpd, url = status_server(status)
    try:
        with pytest.raises(AllowlyAPIError) as info:
            Allowly("allowly.runtime.ws_x.secret", base_url=url).check(authorization_id="a", actions=["x"])
        assert info.value.status == status and info.value.code == "boom"
    finally:
        httpd.shutdown()


def test_bad_key_against_the_server_raises_401(server: Server) -> None:
    client = Allowly("allowly.runtime.ws_nope.notakey", base_url=server.base_url)
    with pytest.raises(AllowlyAPIError) as info:
        client.check(authorization_id="auth_1", actions=["email.send"])
    assert info.value.status == 401


def test_a_body_over_the_limit_is_a_typed_413_not_a_fallback(server: Server) -> None:
    context = {"note": "x" * (100 * 1024)}
    client = Allowly(server.runtime_key, base_url=server.base_url)
    for _ in range(5):  # a reset connection would lose the answer now and then
        with pytest.raises(AllowlyAPIError) as info:
            client.check(authorization_id="auth_1", actions=["email.send"], context=context)
        assert (info.value.status, info.value.code) == (413, "request_too_large")

    async def remote() -> None:
        async with allowly.Allowly(server.runtime_key, base_url=server.base_url) as c:
            await c.check(authorization_id="auth_1", actions=["email.send"], context=context)

    with pytest.raises(AllowlyAPIError) as info:
        asyncio.run(remote())
    assert info.value.code == "request_too_large"


def test_readiness(server: Server, refused: str) -> None:
    assert Allowly(server.runtime_key, base_url=server.base_url).readiness() is True
    assert Allowly("allowly.runtime.ws_x.secret", base_url=refused).readiness() is False
