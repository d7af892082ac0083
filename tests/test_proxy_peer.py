"""The test proxy (``tests/proxy_peer.py``) itself, driven with raw sockets
against a small ``http.server`` origin."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO

import pytest
from proxy_peer import ForwardProxy


class Origin(BaseHTTPRequestHandler):
    """``/close``: a body ended by closing; ``/chunked``: a chunked body;
    ``/empty``: 204; anything else: 200 naming the request, echoing a body."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, dict[str, str]]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.read(2)
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _handle(self) -> None:
        body = self._body()
        self.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        if self.path == "/close":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"until the end")
            self.close_connection = True
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
        elif self.path == "/empty":
            self.send_response(204)
            self.end_headers()
        else:
            reply = f"{self.command} {self.path}".encode() + (b" " + body if body else b"")
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.send_header("Connection", "X-Hop")
            self.send_header("X-Hop", "1")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply)

    do_GET = do_POST = do_HEAD = _handle


@pytest.fixture
def origin() -> Iterator[str]:
    """The origin's authority (``127.0.0.1:PORT``)."""
    Origin.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def connect(proxy: ForwardProxy) -> tuple[socket.socket, BinaryIO]:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=5)
    return sock, sock.makefile("rb")


def read_response(stream: BinaryIO, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and decoded body of one response."""
    status = int(stream.readline().split()[1])
    headers: dict[str, str] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if head or status in (204, 304) or 100 <= status < 200:
        return status, headers, b""
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int(stream.readline().split(b";")[0], 16):
            body += stream.read(size)
            stream.read(2)
        while stream.readline() not in (b"\r\n", b""):
            pass
        return status, headers, body
    if "content-length" in headers:
        return status, headers, stream.read(int(headers["content-length"]))
    return status, headers, stream.read()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_forwards_absolute_form_requests_over_one_kept_alive_connection(origin: str) -> None:
    with ForwardProxy() as proxy:
        sock, stream = connect(proxy)
        with sock, stream:
            for path in ("/a?q=1", "/b"):
                sock.sendall(
                    f"GET http://{origin}{path} HTTP/1.1\r\nHost: {origin}\r\n\r\n".encode()
                )
                status, headers, body = read_response(stream)
                assert (status, body) == (200, f"GET {path}".encode())
                assert "connection" not in headers  # the origin's hop-by-hop fields stay behind
                assert "x-hop" not in headers
    assert proxy.requests == [("GET", f"http://{origin}/a?q=1"), ("GET", f"http://{origin}/b")]
    assert [(method, path) for method, path, _ in Origin.seen] == [("GET", "/a?q=1"), ("GET", "/b")]
    assert Origin.seen[0][2]["host"] == origin
    assert Origin.seen[0][2]["connection"] == "close"
    assert proxy.errors == []


def test_adds_a_host_header_when_missing(origin: str) -> None:
    with ForwardProxy() as proxy:
        sock, stream = connect(proxy)
        with sock, stream:
            sock.sendall(f"GET http://{origin}/x HTTP/1.1\r\n\r\n".encode())
            assert read_response(stream)[0] == 200
    assert Origin.seen[0][2]["host"] == origin


def test_relays_a_chunked_response_as_it_came(origin: str) -> None:
    with ForwardProxy() as proxy:
        sock, stream = connect(proxy)
        with sock, stream:
            sock.sendall(f"GET http://{origin}/chunked HTTP/1.1\r\nHost: {origin}\r\n\r\n".encode())
            status, headers, body = read_response(stream)
            assert (status, headers["transfer-encoding"], body) == (200, "chunked", b"hello world")
            # Still usable: the chunked body ended with its last chunk and trailer.
            sock.sendall(f"GET http://{origin}/x HTTP/1.1\r\nHost: {origin}\r\n\r\n".encode())
            assert read_response(stream)[2] == b"GET /x"


def test_a_close_delimited_response_closes_the_client_connection(origin: str) -> None:
    with ForwardProxy() as proxy:
        sock, stream = connect(proxy)
        with sock, stream:
            sock.sendall(f"GET http://{origin}/close HTTP/1.1\r\nHost: {origin}\r\n\r\n".encode())
            status, headers, body = read_response(stream)
            assert (status, headers["connection"], body) == (200, "close", b"until the end")


def test_bodiless_responses_keep_the_connection(origin: str) -> None:
    with ForwardProxy() as proxy:
        sock, stream = connect(proxy)
        with sock, stream:
            sock.sendall(f"HEAD http://{origin}/x HTTP/1.1\r\nHost: {origin}\r\n\r\n".encode())
            status, headers, _ = read_response(stream, head=True)
            assert (status, headers["content-length"]) == (200, "7")  # "HEAD /x"
            sock.sendall(f"GET http://{origin}/empty HTTP/1.1\r\nHost: {origin}\r\n\r\n".encode())
            assert read_response(stream)[0] == 204
            sock.sendall(f"GET http://{origin}/x HTTP/1.1\r\nHost: {origin}\r\n\r\n".encode())
            assert read_response(stream)[2] == b"GET /x"


def test_request_bodies_are_forwarded(origin: str) -> None:
    with ForwardProxy() as proxy:
        sock, stream = connect(proxy)
        with sock, stream:
            head = f"POST http://{origin}/echo HTTP/1.1\r\nHost: {origin}\r\n"
            sock.sendall(f"{head}Content-Length: 5\r\n\r\nhello".encode())
            assert read_response(stream)[2] == b"POST /echo hello"
            chunked = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            sock.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + chunked)
            assert read_response(stream)[2] == b"POST /echo abcde"


def test_expect_100_continue_is_answered_by_the_proxy(origin: str) -> None:
    with ForwardProxy() as proxy:
        sock, stream = connect(proxy)
        with sock, stream:
            sock.sendall(
                f"POST http://{origin}/echo HTTP/1.1\r\nHost: {origin}\r\n"
                "Expect: 100-continue\r\nContent-Length: 2\r\n\r\n".encode()
            )
            assert read_response(stream)[0] == 100
            sock.sendall(b"ok")
            assert read_response(stream)[2] == b"POST /echo ok"
    assert "expect" not in Origin.seen[0][2]


def test_hop_by_hop_request_fields_are_not_forwarded(origin: str) -> None:
    with ForwardProxy(auth=("u", "p")) as proxy:
        sock, stream = connect(proxy)
        with sock, stream:
            sock.sendall(
                f"GET http://{origin}/x HTTP/1.1\r\nHost: {origin}\r\n"
                f"Proxy-Authorization: {basic('u', 'p')}\r\nProxy-Connection: keep-alive\r\n"
                "Connection: X-Private\r\nX-Private: 1\r\nX-Kept: 2\r\n\r\n".encode()
            )
            assert read_response(stream)[0] == 200
    seen = Origin.seen[0][2]
    assert "proxy-authorization" not in seen
    assert "proxy-connection" not in seen
    assert "x-private" not in seen
    assert seen["x-kept"] == "2"
    assert proxy.request_headers[0]["proxy-authorization"] == basic("u", "p")


def test_requests_without_credentials_get_407(origin: str) -> None:
    with ForwardProxy(auth=("u", "p")) as proxy:
        sock, stream = connect(proxy)
        with sock, stream:
            request = f"POST http://{origin}/x HTTP/1.1\r\nHost: {origin}\r\nContent-Length: 3\r\n"
            for credentials in ("", f"Proxy-Authorization: {basic('u', 'wrong')}\r\n"):
                sock.sendall(f"{request}{credentials}\r\nabc".encode())
                status, headers, _ = read_response(stream)
                assert status == 407
                assert headers["proxy-authenticate"] == 'Basic realm="proxy"'
            # The refused bodies were read: the connection is still in step.
            sock.sendall(f"{request}Proxy-Authorization: {basic('u', 'p')}\r\n\r\nabc".encode())
            assert read_response(stream)[2] == b"POST /x abc"
    assert len(proxy.requests) == 3
    assert len(Origin.seen) == 1


def test_connect_tunnels_bytes_both_ways(origin: str) -> None:
    with ForwardProxy(auth=("u", "p")) as proxy:
        sock, stream = connect(proxy)
        with sock, stream:
            sock.sendall(f"CONNECT {origin} HTTP/1.1\r\nHost: {origin}\r\n\r\n".encode())
            assert read_response(stream)[0] == 407
            sock.sendall(
                f"CONNECT {origin} HTTP/1.1\r\nHost: {origin}\r\n"
                f"Proxy-Authorization: {basic('u', 'p')}\r\n\r\n".encode()
            )
            status, _, _ = read_response(stream, head=True)
            assert status == 200
            # Now the origin is on the other end: origin-form requests, kept alive.
            for path in ("/a", "/b"):
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {origin}\r\n\r\n".encode())
                assert read_response(stream)[2] == f"GET {path}".encode()
    assert proxy.connects == [origin, origin]
    assert proxy.requests == [("CONNECT", origin), ("CONNECT", origin)]


def test_bytes_sent_with_the_connect_reach_the_origin(origin: str) -> None:
    with ForwardProxy() as proxy:
        sock, stream = connect(proxy)
        with sock, stream:
            sock.sendall(
                f"CONNECT {origin} HTTP/1.1\r\n\r\nGET /early HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            )
            assert read_response(stream, head=True)[0] == 200
            assert read_response(stream)[2] == b"GET /early"


def test_tunnel_passes_on_the_end_of_the_stream(origin: str) -> None:
    with ForwardProxy() as proxy:
        sock, stream = connect(proxy)
        with sock, stream:
            sock.sendall(f"CONNECT {origin} HTTP/1.1\r\n\r\n".encode())
            assert read_response(stream, head=True)[0] == 200
            sock.sendall(f"GET /close HTTP/1.1\r\nHost: {origin}\r\n\r\n".encode())
            assert read_response(stream)[2] == b"until the end"  # read to EOF


def test_unreachable_origins_get_502(closed_port: int) -> None:
    with ForwardProxy() as proxy:
        for request in (
            f"CONNECT 127.0.0.1:{closed_port} HTTP/1.1\r\n\r\n",
            f"GET http://127.0.0.1:{closed_port}/ HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            sock, stream = connect(proxy)
            with sock, stream:
                sock.sendall(request.encode())
                status, headers, _ = read_response(stream)
                assert (status, headers["connection"]) == (502, "close")
                assert stream.read() == b""
        assert proxy.connects == [f"127.0.0.1:{closed_port}"]


@pytest.mark.parametrize(
    "request_line",
    ["GET /origin-form HTTP/1.1", "GET https://127.0.0.1:1/ HTTP/1.1", "CONNECT nowhere HTTP/1.1"],
)
def test_requests_it_cannot_serve_get_400(request_line: str) -> None:
    with ForwardProxy() as proxy:
        sock, stream = connect(proxy)
        with sock, stream:
            sock.sendall(f"{request_line}\r\nHost: x\r\n\r\n".encode())
            assert read_response(stream)[0] == 400


def test_connections_beyond_the_limit_get_503(origin: str) -> None:
    with ForwardProxy(max_connections=1) as proxy:
        first, first_stream = connect(proxy)
        with first, first_stream:
            first.sendall(f"GET http://{origin}/x HTTP/1.1\r\nHost: {origin}\r\n\r\n".encode())
            assert read_response(first_stream)[0] == 200  # the first holds the only slot
            second, second_stream = connect(proxy)
            with second, second_stream:
                assert read_response(second_stream)[0] == 503


def test_close_ends_idle_connections_and_tunnels(origin: str) -> None:
    proxy = ForwardProxy().start()
    idle, idle_stream = connect(proxy)
    tunnel, tunnel_stream = connect(proxy)
    with idle, idle_stream, tunnel, tunnel_stream:
        tunnel.sendall(f"CONNECT {origin} HTTP/1.1\r\n\r\n".encode())
        assert read_response(tunnel_stream, head=True)[0] == 200
        proxy.close()
        assert idle_stream.read() == b""
        assert tunnel_stream.read() == b""
    assert not [t for t in threading.enumerate() if t.name.startswith("forward-proxy-")]
    with pytest.raises(OSError):
        socket.create_connection((proxy.host, proxy.port), timeout=1).close()
