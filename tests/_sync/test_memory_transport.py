# GENERATED from tests/_async/test_memory_transport.py by scripts/unasync.py: do not edit.
"""The whole engine over the in-process network: no socket is touched, and faults
injected at a byte offset reach the client as typed errors, never as short bodies."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import hyperpy
from hyperpy import Client, Request, Response, Server, Timeout
from hyperpy._backends import SyncClock
from hyperpy.testing import MemoryNetwork

MB = 1024 * 1024
BLOB = random.Random(12).randbytes(MB)


def _chunks(size: int, chunk: int = 16 * 1024) -> Iterator[bytes]:
    for start in range(0, size, chunk):
        yield BLOB[start : min(size, start + chunk)]


def app(request: Request) -> Response:
    if request.path == "/echo":
        return Response(200, content=request.read())
    if request.path == "/blob":  # in memory: Content-Length framing
        return Response(200, content=BLOB)
    if request.path == "/stream":  # streamed: chunked over HTTP/1.1
        return Response(200, content=_chunks(MB))
    return Response(404)


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to connect or bind a real socket fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a real socket was used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket.socket, "bind", refuse)


def _client(net: MemoryNetwork, http2: bool, **options: Any) -> Client:
    options.setdefault("timeout", Timeout(5))
    return Client(network=net, http2_prior_knowledge=http2, **options)


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
def test_one_megabyte_echo_without_sockets(no_sockets: None, http2: bool) -> None:
    net = MemoryNetwork()
    with (
        Server(app, port=0, network=net) as server,
        _client(net, http2) as client,
    ):
        for body in (BLOB, _chunks(MB)):
            response = client.post(server.url + "/echo", content=body)
            assert response.status == 200
            assert response.http_version == ("2" if http2 else "1.1")
            assert response.content == BLOB
        # Any host and port reach the network's one server.
        response = client.post("http://anywhere.example:1234/echo", content=b"hi")
        assert response.content == b"hi"
    assert net.connections_opened == 2  # one per origin


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
@pytest.mark.parametrize("path", ["/blob", "/stream"])
@pytest.mark.parametrize("cut", [0, 60, 5000, 300_000])
def test_cut_after_is_a_typed_error_never_a_short_body(http2: bool, path: str, cut: int) -> None:
    """The connection breaks after ``cut`` bytes to the client. A break in the middle
    of the response must reach the caller as a typed error; one so early that the
    request provably never went out (HTTP/2's set-up) may instead be retried on a
    fresh connection. Either way, no caller ever sees a short body."""
    mid_response = cut >= 5000
    net = MemoryNetwork()
    with Server(app, port=0, network=net) as server, _client(net, http2) as client:
        for _ in range(3):
            net.cut_after(cut)
            try:
                response = client.get(server.url + path)
            except hyperpy.HTTPError:
                pass
            else:
                assert not mid_response, "the break went unnoticed"
                assert response.content == BLOB
            net.cut_after(cut)
            received = b""
            try:
                with client.stream("GET", server.url + path) as response:
                    for chunk in response.iter_bytes():
                        received += chunk
            except hyperpy.HTTPError:
                assert len(received) < len(BLOB)
                assert BLOB.startswith(received)  # what came is a true prefix
            else:
                assert not mid_response, "the break went unnoticed"
                assert received == BLOB
        # The next connection is whole again.
        response = client.get(server.url + path)
        assert response.content == BLOB


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
def test_stall_after_is_a_read_timeout(http2: bool) -> None:
    net = MemoryNetwork()
    with (
        Server(app, port=0, network=net) as server,
        _client(net, http2, timeout=Timeout(5, read=0.3)) as client,
    ):
        net.stall_after(20_000)
        start = SyncClock.now()
        with pytest.raises(hyperpy.ReadTimeout):
            client.get(server.url + "/blob")
        assert SyncClock.now() - start < 2.0


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
def test_delay_slows_the_exchange_and_loses_nothing(http2: bool) -> None:
    net = MemoryNetwork()
    with Server(app, port=0, network=net) as server, _client(net, http2) as client:
        net.delay(0.1, direction="to_client")
        start = SyncClock.now()
        response = client.post(server.url + "/echo", content=b"x" * 100_000)
        assert response.content == b"x" * 100_000
        assert SyncClock.now() - start >= 0.1


def test_refused_connect_is_a_connect_error() -> None:
    net = MemoryNetwork()
    with Server(app, port=0, network=net) as server, _client(net, False) as client:
        net.refuse_next()
        with pytest.raises(hyperpy.ConnectError):
            client.get(server.url + "/echo")
        assert (client.post(server.url + "/echo", content=b"ok")).content == b"ok"
