"""The tinyproxy fixture (``tests/tinyproxy_peer.py``) itself, driven with raw
sockets against a small ``http.server`` origin and a plain TCP echo server."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from tinyproxy_peer import tinyproxy

TIMEOUT = 5.0


class Origin(BaseHTTPRequestHandler):
    """Answers 200 with a body naming the request."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = f"GET {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def origin() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP port whose first connection gets back what it sends, until it ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.settimeout(TIMEOUT)
        with conn:
            try:
                for _ in range(1000):
                    data = conn.recv(65536)
                    if not data:
                        return
                    conn.sendall(data)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(TIMEOUT)


def _dial(proxy_url: str) -> socket.socket:
    url = urlsplit(proxy_url)
    assert url.hostname is not None and url.port is not None
    return socket.create_connection((url.hostname, url.port), timeout=TIMEOUT)


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The response head, and whatever came after it."""
    data = b""
    for _ in range(100):
        if b"\r\n\r\n" in data:
            head, _, rest = data.partition(b"\r\n\r\n")
            return head, rest
        piece = sock.recv(65536)
        assert piece, f"closed inside a head: {data!r}"
        data += piece
    raise AssertionError("head too long")


def _recv_all(sock: socket.socket) -> bytes:
    data = b""
    for _ in range(100):
        piece = sock.recv(65536)
        if not piece:
            return data
        data += piece
    raise AssertionError("no EOF")


def test_forwards_plain_http(origin: int) -> None:
    with tinyproxy() as proxy_url, _dial(proxy_url) as sock:
        assert proxy_url.startswith("http://127.0.0.1:")
        sock.sendall(
            f"GET http://127.0.0.1:{origin}/hello?x=1 HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{origin}\r\nConnection: close\r\n\r\n".encode()
        )
        head, rest = _read_head(sock)
        assert head.split(b"\r\n")[0].split(b" ")[1] == b"200"
        assert (rest + _recv_all(sock)) == b"GET /hello?x=1"


def test_connect_to_a_high_port(echo_port: int) -> None:
    with tinyproxy() as proxy_url, _dial(proxy_url) as sock:
        sock.sendall(
            f"CONNECT 127.0.0.1:{echo_port} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{echo_port}\r\n\r\n".encode()
        )
        head, rest = _read_head(sock)
        assert head.split(b"\r\n")[0] == b"HTTP/1.0 200 Connection established"
        assert rest == b""
        sock.sendall(b"through the tunnel")
        # Read before closing: tinyproxy ends the whole tunnel on a client's half-close.
        data = b""
        for _ in range(100):
            if len(data) >= 18:
                break
            piece = sock.recv(65536)
            assert piece, f"tunnel closed after {data!r}"
            data += piece
        assert data == b"through the tunnel"


def test_given_port_and_stop() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tinyproxy(port) as proxy_url:
        assert proxy_url == f"http://127.0.0.1:{port}"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()


def test_missing_binary_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install tinyproxy"):
        with tinyproxy():
            pass


def test_missing_binary_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="tinyproxy not installed"):
        with tinyproxy():
            pass
