"""Server features for deployment: the access log, the app lifespan hook, and
serving on an inherited socket; in both worlds, over real loopback sockets."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from hyperpy import AsyncClient, AsyncServer, Request, Response

LINE = re.compile(
    r"^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "
    r'"(GET|POST) (/\S*) HTTP/(1\.1|2)" (\d{3}) (\d+) "([^"]*)" "([^"]*)" \d+\.\d{4}$'
)


async def app(request: Request) -> Response:
    body = await request.aread()
    if request.path == "/missing":
        return Response(404, text="no")
    return Response(200, content=b"x" * 10 + body)


@pytest.mark.parametrize("h2", [False, True])
async def test_access_log_line_per_request(caplog: pytest.LogCaptureFixture, h2: bool) -> None:
    caplog.set_level(logging.INFO, logger="hyperpy.access")
    async with (
        AsyncServer(app, port=0, access_log=True) as server,
        AsyncClient(http2_prior_knowledge=h2) as client,
    ):
        await client.get(
            server.url + "/a?b=1", headers={"referer": "http://r/", "user-agent": "t/1"}
        )
        await client.post(server.url + "/up", content=b"12345")
        await client.get(server.url + "/missing")
    lines = [r.getMessage() for r in caplog.records if r.name == "hyperpy.access"]
    assert len(lines) == 3, lines
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    # A line is written once its response is out: over HTTP/2 (a thread per stream
    # in the blocking world) the next request's line may come first.
    by_path = {m.group(2): m.groups() for m in parsed if m is not None}
    first, second, third = by_path["/a?b=1"], by_path["/up"], by_path["/missing"]
    version = "2" if h2 else "1.1"
    assert first == ("GET", "/a?b=1", version, "200", "10", "http://r/", "t/1")
    assert second[:5] == ("POST", "/up", version, "200", "15")
    assert third[3:5] == ("404", "2")


async def test_no_access_log_by_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hyperpy.access")
    async with AsyncServer(app, port=0) as server, AsyncClient() as client:
        await client.get(server.url + "/")
    assert not [r for r in caplog.records if r.name == "hyperpy.access"]


class LifespanApp:
    """A handler with a lifespan: it starts a task beside the server."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[str] = []
        self.fail = fail

    async def __call__(self, request: Request) -> Response:
        return Response(200, text=",".join(self.events))

    @asynccontextmanager
    async def lifespan(self, spawn: Callable[..., Any]) -> AsyncIterator[None]:
        self.events.append("startup")
        if self.fail:
            raise RuntimeError("the database is down")
        spawn(self._background)
        yield
        self.events.append("shutdown")

    async def _background(self) -> None:
        self.events.append("task")


async def test_lifespan_runs_around_serving() -> None:
    lifespan_app = LifespanApp()
    async with AsyncServer(lifespan_app, port=0) as server, AsyncClient() as client:
        text = (await client.get(server.url + "/")).text
    assert text.startswith("startup")
    assert lifespan_app.events[-1] == "shutdown"
    assert "task" in lifespan_app.events


async def test_a_failed_startup_stops_the_server() -> None:
    with pytest.raises(RuntimeError, match="the database is down"):
        async with AsyncServer(LifespanApp(fail=True), port=0):
            pass  # pragma: no cover


async def test_serving_on_an_inherited_socket() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    fd = sock.detach()  # the server owns it now
    async with AsyncServer(app, fd=fd) as server, AsyncClient() as client:
        assert server.address == ("127.0.0.1", port)
        assert (await client.get(f"http://127.0.0.1:{port}/")).status == 200
