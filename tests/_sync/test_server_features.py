# GENERATED from tests/_async/test_server_features.py by scripts/unasync.py: do not edit.
"""Server features for deployment: the access log, the app lifespan hook, and
serving on an inherited socket; in both worlds, over real loopback sockets."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from hyperpy import Client, Request, Response, Server

LINE = re.compile(
    r"^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "
    r'"(GET|POST) (/\S*) HTTP/(1\.1|2)" (\d{3}) (\d+) "([^"]*)" "([^"]*)" \d+\.\d{4}$'
)


def app(request: Request) -> Response:
    body = request.read()
    if request.path == "/missing":
        return Response(404, text="no")
    return Response(200, content=b"x" * 10 + body)


@pytest.mark.parametrize("h2", [False, True])
def test_access_log_line_per_request(caplog: pytest.LogCaptureFixture, h2: bool) -> None:
    caplog.set_level(logging.INFO, logger="hyperpy.access")
    with (
        Server(app, port=0, access_log=True) as server,
        Client(http2_prior_knowledge=h2) as client,
    ):
        client.get(server.url + "/a?b=1", headers={"referer": "http://r/", "user-agent": "t/1"})
        client.post(server.url + "/up", content=b"12345")
        client.get(server.url + "/missing")
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


def test_no_access_log_by_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hyperpy.access")
    with Server(app, port=0) as server, Client() as client:
        client.get(server.url + "/")
    assert not [r for r in caplog.records if r.name == "hyperpy.access"]


class LifespanApp:
    """A handler with a lifespan: it starts a task beside the server."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[str] = []
        self.fail = fail

    def __call__(self, request: Request) -> Response:
        return Response(200, text=",".join(self.events))

    @contextmanager
    def lifespan(self, spawn: Callable[..., Any]) -> Iterator[None]:
        self.events.append("startup")
        if self.fail:
            raise RuntimeError("the database is down")
        spawn(self._background)
        yield
        self.events.append("shutdown")

    def _background(self) -> None:
        self.events.append("task")


def test_lifespan_runs_around_serving() -> None:
    lifespan_app = LifespanApp()
    with Server(lifespan_app, port=0) as server, Client() as client:
        text = (client.get(server.url + "/")).text
    assert text.startswith("startup")
    assert lifespan_app.events[-1] == "shutdown"
    assert "task" in lifespan_app.events


def test_a_failed_startup_stops_the_server() -> None:
    with pytest.raises(RuntimeError, match="the database is down"):
        with Server(LifespanApp(fail=True), port=0):
            pass  # pragma: no cover


def test_serving_on_an_inherited_socket() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    fd = sock.detach()  # the server owns it now
    with Server(app, fd=fd) as server, Client() as client:
        assert server.address == ("127.0.0.1", port)
        assert (client.get(f"http://127.0.0.1:{port}/")).status == 200
