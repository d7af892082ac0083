# GENERATED from tests/_async/test_connection.py by scripts/unasync.py: do not edit.
"""Connection-level HTTP/1.1: keep-alive, pipelining, 100-continue, HTTP/1.0, IPv6."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime

import pytest

import hyperpy
from hyperpy import Client, Server, ServerLimits
from hyperpy._backends import SyncClock, SyncListener, SyncStream, SyncTaskGroup
from hyperpy.testing import MemoryNetwork

from .helpers import app, raw_connection, read_head, read_responses, read_until_eof

N = 20


def _port(server: Server) -> int:
    assert server.address is not None
    return server.address[1]


def test_keepalive_reuses_one_connection(server: Server, client: Client) -> None:
    ports = set()
    for _ in range(N):
        response = client.get(server.url + "/client")
        assert response.status == 200
        seen = response.json()
        assert seen["host"] == "127.0.0.1"
        ports.add(seen["port"])
    assert len(ports) == 1
    assert client.connections_opened == 1


def test_keepalive_across_methods_and_bodies(server: Server, client: Client) -> None:
    ports = set()
    for i in range(N):
        if i % 3 == 0:
            response = client.post(server.url + "/upload", content=[b"a", b"b"])
            assert response.json()["total"] == 2
        elif i % 3 == 1:
            response = client.put(server.url + "/upload", content=b"x" * i)
            assert response.json()["total"] == i
        else:
            response = client.head(server.url + "/client")
            assert response.content == b""
        ports.add((client.get(server.url + "/client")).json()["port"])
    assert len(ports) == 1
    assert client.connections_opened == 1


def test_pipelined_requests_answered_in_order(server: Server) -> None:
    requests = b"".join(
        b"GET /inspect?n=%d HTTP/1.1\r\nHost: pipeline\r\n\r\n" % n for n in range(3)
    )
    with raw_connection(server) as stream:
        stream.send_all(requests, 5.0)
        responses = read_responses(stream, [b"GET"] * 3)
    assert [r.status for r in responses] == [200, 200, 200]
    targets = [json.loads(r.body)["target"] for r in responses]
    assert targets == ["/inspect?n=0", "/inspect?n=1", "/inspect?n=2"]


def test_pipelined_mixed_methods(demo_server: Server) -> None:
    requests = (
        b"POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n\r\nfirst"
        b"HEAD / HTTP/1.1\r\nHost: p\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nsec\r\n3\r\nond\r\n0\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"
    )
    with raw_connection(demo_server) as stream:
        stream.send_all(requests, 5.0)
        responses = read_responses(stream, [b"POST", b"HEAD", b"POST", b"GET"])
        rest = read_until_eof(stream)
    assert [r.body for r in responses] == [b"first", b"", b"second", b"Hello, world!"]
    assert responses[1].headers["content-length"] == "13"
    assert responses[3].headers["connection"] == "close"
    assert rest == b""


def test_expect_100_continue(demo_server: Server) -> None:
    body = b"sent only after 100 Continue"
    head = (
        b"POST /echo HTTP/1.1\r\nHost: e\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with raw_connection(demo_server) as stream:
        stream.send_all(head, 5.0)
        buffer = bytearray()
        interim = read_head(stream, buffer)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        assert not buffer  # nothing beyond the interim response yet
        stream.send_all(body, 5.0)
        final = read_head(stream, buffer)
        assert final.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"content-length: %d\r\n" % len(body) in final.lower()
        while len(buffer) < len(body):
            chunk = stream.receive(65536, 5.0)
            assert chunk
            buffer += chunk
        assert bytes(buffer) == body


def test_expect_100_continue_not_read_by_handler(server: Server) -> None:
    # "/" answers without reading the body: no 100 Continue, the final response comes
    # straight away, and the server closes (the client may or may not send the body).
    head = b"POST / HTTP/1.1\r\nHost: e\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n"
    with raw_connection(server) as stream:
        stream.send_all(head, 5.0)
        data = read_until_eof(stream)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"100 Continue" not in data
    assert data.endswith(b"\r\n\r\nok")


def test_http10_client(demo_server: Server) -> None:
    with raw_connection(demo_server) as stream:
        stream.send_all(b"GET / HTTP/1.0\r\n\r\n", 5.0)
        data = read_until_eof(stream)  # HTTP/1.0 without keep-alive: server closes
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 200")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert body == b"Hello, world!"
    assert headers["content-length"] == "13"
    assert headers["server"] == "hyperpy"
    assert parsedate_to_datetime(headers["date"]).year >= 2024
    assert "transfer-encoding" not in headers


def test_http10_streamed_response_is_close_delimited(server: Server) -> None:
    with raw_connection(server) as stream:
        stream.send_all(b"GET /stream?n=3&size=4 HTTP/1.0\r\nHost: old\r\n\r\n", 5.0)
        data = read_until_eof(stream)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding" not in head.lower()  # HTTP/1.0 cannot parse chunked
    assert b"content-length" not in head.lower()
    assert body == b"AAAABBBBCCCC"


def test_http10_request_seen_by_handler(server: Server) -> None:
    with raw_connection(server) as stream:
        stream.send_all(b"GET /inspect HTTP/1.0\r\nHost: h\r\n\r\n", 5.0)
        data = read_until_eof(stream)
    body = data.partition(b"\r\n\r\n")[2]
    assert json.loads(body)["http_version"] == "1.0"


def test_connection_close_request(server: Server) -> None:
    with raw_connection(server) as stream:
        stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 5.0)
        data = read_until_eof(stream)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close\r\n" in data.lower()
    assert data.endswith(b"\r\n\r\nok")


def test_server_closes_idle_keepalive_connection(net: MemoryNetwork) -> None:
    limits = ServerLimits(keep_alive_timeout=0.3)
    with Server(app, port=0, limits=limits, network=net) as server:
        with raw_connection(server) as stream:
            stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 5.0)
            started = SyncClock.now()
            [response] = read_responses(stream, [b"GET"])
            assert response.body == b"ok"
            rest = read_until_eof(stream, limit=3.0)
            assert rest == b""
            assert SyncClock.now() - started >= 0.25


def test_each_idle_connection_keeps_its_own_deadline(net: MemoryNetwork) -> None:
    # One connection idles past the timeout while another keeps asking more often
    # than it: the first is closed, the second never is (each request restarts its
    # deadline, whoever keeps the deadlines: a task for all, or a parker).
    limits = ServerLimits(keep_alive_timeout=0.4)
    request = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    with Server(app, port=0, limits=limits, network=net) as server:
        with raw_connection(server) as idle, raw_connection(server) as busy:
            idle.send_all(request, 5.0)
            assert [r.body for r in read_responses(idle, [b"GET"])] == [b"ok"]
            for _ in range(6):  # 0.9 s in all, more than twice the timeout
                busy.send_all(request, 5.0)
                assert [r.body for r in read_responses(busy, [b"GET"])] == [b"ok"]
                SyncClock.sleep(0.15)
            # Closed about 0.5 s ago already: not held open by the other's requests.
            assert read_until_eof(idle, limit=0.2) == b""
            busy.send_all(request, 5.0)
            assert [r.body for r in read_responses(busy, [b"GET"])] == [b"ok"]


def test_client_replaces_connection_closed_by_server(net: MemoryNetwork) -> None:
    limits = ServerLimits(keep_alive_timeout=0.2)
    with Server(app, port=0, limits=limits, network=net) as server:
        with Client(network=net) as client:
            first = (client.get(server.url + "/client")).json()["port"]
            SyncClock.sleep(0.6)  # the server closes the idle connection meanwhile
            second = (client.get(server.url + "/client")).json()["port"]
            assert first != second
            assert client.connections_opened == 2


@pytest.mark.parametrize("http2", [True, False], ids=["h1-and-h2c", "h1-only"])
def test_silent_connection_closes_at_the_keep_alive_timeout(
    net: MemoryNetwork, http2: bool
) -> None:
    limits = ServerLimits(keep_alive_timeout=0.3, header_read_timeout=5.0)
    with Server(app, port=0, limits=limits, network=net, http2=http2) as server:
        with raw_connection(server) as stream:
            started = SyncClock.now()
            assert read_until_eof(stream, limit=3.0) == b""
            assert 0.25 <= SyncClock.now() - started < 2.0
        with Client(network=net) as client:
            assert (client.get(server.url + "/")).status == 200


@pytest.mark.parametrize("http2", [True, False], ids=["h1-and-h2c", "h1-only"])
def test_a_trickled_head_is_cut_off_from_its_first_byte(net: MemoryNetwork, http2: bool) -> None:
    """Slowloris: a head sent a byte at a time must be complete within
    header_read_timeout of its first byte, however steadily it trickles."""
    limits = ServerLimits(keep_alive_timeout=5.0, header_read_timeout=0.6)
    with Server(app, port=0, limits=limits, network=net, http2=http2) as server:
        with raw_connection(server) as stream:
            started = SyncClock.now()
            closed = False
            for byte in b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: " + b"z" * 100:
                try:
                    stream.send_all(bytes([byte]), 1.0)
                except hyperpy.WriteError:
                    closed = True
                    break
                if stream.is_readable():
                    closed = True
                    break
                SyncClock.sleep(0.05)
            assert closed, "the trickled head was not cut off"
            assert SyncClock.now() - started < 2.0


def test_ipv6_loopback(ipv6_loopback: str) -> None:
    with Server(app, host=ipv6_loopback, port=0) as server:
        assert server.url.startswith("http://[::1]:")
        with Client() as client:
            response = client.get(server.url + "/client")
            inspect = client.get(server.url + "/inspect")
    assert response.status == 200
    assert response.json()["host"] == "::1"
    headers = dict(inspect.json()["headers"])
    assert headers["host"] == server.url.removeprefix("http://")


def test_http1_only_server(net: MemoryNetwork) -> None:
    # Without h2c there is no sniffing of the first bytes: h11 starts from nothing.
    with Server(app, port=0, http2=False, network=net) as server:
        with Client(network=net) as client:
            for _ in range(3):
                assert (client.get(server.url + "/")).text == "ok"
            assert client.connections_opened == 1


SyncServerScript = tuple[SyncListener, Callable[[SyncTaskGroup], Awaitable[None]]]


def _drop_second_requests(net: MemoryNetwork, seen: list[bytes]) -> SyncServerScript:
    """A raw server that answers the first request of each connection (kept alive)
    and closes the connection, unanswered, on the second: a server that fails
    while handling a request looks like this."""
    listener = net.listen_tcp("127.0.0.1", 80)

    def serve(task_group: SyncTaskGroup) -> None:
        while True:
            stream = listener.accept()
            if stream is None:
                return
            task_group.start_soon(connection, stream)

    def connection(stream: SyncStream) -> None:
        buffer = bytearray()
        answered = False
        while True:
            data = stream.receive(65536, 5.0)
            if not data:
                break
            buffer += data
            while b"\r\n\r\n" in buffer:
                head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
                buffer[:] = rest
                seen.append(head.split(b" ")[0])
                if answered:
                    stream.close()  # unanswered: as if the handler crashed
                    return
                answered = True
                stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", 5.0)
        stream.close()

    return listener, serve


def test_reused_connection_dropped_mid_request_is_retried_once_for_get(
    net: MemoryNetwork,
) -> None:
    seen: list[bytes] = []
    listener, serve = _drop_second_requests(net, seen)
    with SyncTaskGroup() as tasks:
        tasks.start_soon(serve, tasks)
        with Client(network=net, timeout=5.0) as client:
            assert (client.get("http://h/")).content == b"ok"
            # The reused connection drops the GET: sent again once, on a new connection,
            # whose first request is answered.
            assert (client.get("http://h/again")).content == b"ok"
            assert client.connections_opened == 2
            # A POST is never sent twice on a guess: the caller hears why.
            with pytest.raises(hyperpy.RequestNotProcessed) as info:
                client.post("http://h/pay", content=b"1 EUR")
            assert not info.value.certain
            assert "POST is not retried automatically" in str(info.value)
        listener.close()
    assert seen == [b"GET", b"GET", b"GET", b"POST"]


@pytest.mark.parametrize("kind", ["silent", "kept-alive"])
def test_idle_connections_are_shed_at_the_limit(net: MemoryNetwork, kind: str) -> None:
    """Twice max_connections idle connections (silent, or kept alive after a request)
    must not lock out an active client: at the limit the server closes the
    connection idle the longest, oldest first."""
    limit = 10
    limits = ServerLimits(max_connections=limit, keep_alive_timeout=30.0)
    with Server(app, port=0, limits=limits, network=net) as server:
        assert server.address is not None
        idle: list[SyncStream] = []
        try:
            for _ in range(2 * limit):
                stream = net.connect_tcp(*server.address, 5.0)
                idle.append(stream)
                if kind == "kept-alive":
                    stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 5.0)
                    assert (read_head(stream, bytearray())).startswith(b"HTTP/1.1 200")
            start = SyncClock.now()
            with Client(network=net, timeout=5.0) as client:
                assert (client.get(server.url + "/")).status == 200
            assert SyncClock.now() - start < 1.0
            # The oldest were closed to make room; the newest are still open.
            assert idle[0].is_readable()  # EOF waits there
            assert not idle[-1].is_readable()
        finally:
            for stream in idle:
                stream.close()


def test_bytes_after_a_response_never_answer_the_next_request(
    net: MemoryNetwork,
) -> None:
    # The server writes a second, unsolicited response right behind the first, in the
    # same write: the client must not keep that connection and read the extra
    # response as the answer to its next request.
    listener = net.listen_tcp("127.0.0.1", 80)
    smuggled = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nEVIL!"

    def connection(stream: SyncStream) -> None:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            data = stream.receive(65536, 5.0)
            if not data:
                return
            buffer += data
        stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok" + smuggled, 5.0)
        while stream.receive(65536, 5.0):
            pass  # a second request here would be answered by the smuggled bytes
        stream.close()

    def serve(task_group: SyncTaskGroup) -> None:
        while True:
            stream = listener.accept()
            if stream is None:
                return
            task_group.start_soon(connection, stream)

    with SyncTaskGroup() as tasks:
        tasks.start_soon(serve, tasks)
        with Client(network=net, timeout=5.0) as client:
            for _ in range(3):
                assert (client.get("http://h/")).content == b"ok"
            assert client.connections_opened == 3
        listener.close()
