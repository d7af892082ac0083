"""hyperpy's clients against Python's ``http.server`` speaking HTTP/1.0.

A ``BaseHTTPRequestHandler`` with ``protocol_version = "HTTP/1.0"`` runs in a thread
on a loopback port. It never keeps a connection alive: each response ends with the
connection, and most of its bodies have no Content-Length, so only that close says
where they end. The client must read each such body to the close (never a byte
short, however slowly it comes), see HTTP/1.0, and never send a second request on
a connection the server closes: ten requests in a row take ten connections.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import trio
from peers import interop

from hyperpy import AsyncClient, Client, Response

ASYNC = interop("http.server", "HTTP/1.0", world="async", role="client")
SYNC = interop("http.server", "HTTP/1.0", world="sync", role="client")

BIG = bytes((i * 13 + i // 509) % 256 for i in range(2 * 1024 * 1024))  # 2 MiB, not periodic
PIECE = 64 * 1024
SLOW_PIECES, SLOW_DELAY = 4, 0.05
SEQUENTIAL = 10
TIMEOUT = 20.0


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.0: the connection closes after every response."""

    protocol_version = "HTTP/1.0"
    server: PeerServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: pytest shows what the assertions say

    def setup(self) -> None:
        super().setup()
        self.server.count_connection()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/close-delimited":
            # No Content-Length: the body ends when the connection does.
            self._head(200, {"Content-Type": "application/octet-stream"})
            for start in range(0, len(BIG), PIECE):
                self.wfile.write(BIG[start : start + PIECE])
        elif url.path == "/slow":
            # The pieces come apart in time: a client that took a pause for the end
            # of the body would stop short.
            self._head(200, {"Content-Type": "text/plain"})
            for index in range(SLOW_PIECES):
                self.wfile.write(f"piece {index}\n".encode())
                self.wfile.flush()
                time.sleep(SLOW_DELAY)
        elif url.path == "/empty":
            self._head(200, {"Content-Type": "text/plain"})
        elif url.path == "/length":
            # A length, and still no keep-alive: HTTP/1.0 closes unless asked not to.
            body = query.get("n", ["0"])[0].encode() * 100
            self._head(200, {"Content-Type": "text/plain", "Content-Length": str(len(body))})
            self.wfile.write(body)
        else:
            self._head(404, {"Content-Length": "0"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._head(200, {"Content-Type": "text/plain"})
        self.wfile.write(hashlib.sha256(body).hexdigest().encode())

    def _head(self, status: int, fields: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in fields.items():
            self.send_header(name, value)
        self.end_headers()


class PeerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self._lock = threading.Lock()
        self.connections = 0

    def count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server() -> Iterator[PeerServer]:
    peer = PeerServer()
    thread = threading.Thread(target=peer.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield peer
    finally:
        peer.shutdown()
        peer.server_close()
        thread.join(TIMEOUT)


def check_http10(response: Response) -> None:
    assert (response.status_code, response.http_version) == (200, "1.0")
    # The server says nothing of the connection's end: HTTP/1.0 closes by default.
    assert "connection" not in response.headers


SLOW_BODY = b"".join(f"piece {index}\n".encode() for index in range(SLOW_PIECES))


def expected_length_body(index: int) -> bytes:
    return str(index).encode() * 100


# -- trio ---------------------------------------------------------------------------------


@ASYNC
async def test_async_close_delimited_bodies(server: PeerServer) -> None:
    async with AsyncClient(timeout=TIMEOUT) as client:
        with trio.fail_after(TIMEOUT):
            response = await client.get(server.url + "/close-delimited")
            check_http10(response)
            assert "content-length" not in response.headers
            assert response.content == BIG
            # Streamed, it is the same: read to the close, in pieces.
            digest, size = hashlib.sha256(), 0
            async with client.stream("GET", server.url + "/close-delimited") as response:
                async for chunk in response.aiter_bytes():
                    digest.update(chunk)
                    size += len(chunk)
            assert (size, digest.hexdigest()) == (len(BIG), hashlib.sha256(BIG).hexdigest())
            response = await client.get(server.url + "/slow")
            assert response.content == SLOW_BODY
            response = await client.get(server.url + "/empty")
            check_http10(response)
            assert response.content == b""
            response = await client.post(server.url + "/echo", content=BIG)
            assert response.content == hashlib.sha256(BIG).hexdigest().encode()
        # No connection carried a second request: the server closed each one.
        assert client.connections_opened == server.connections == 5


@ASYNC
async def test_async_sequential_requests_without_keep_alive(server: PeerServer) -> None:
    async with AsyncClient(timeout=TIMEOUT) as client:
        with trio.fail_after(TIMEOUT):
            for index in range(SEQUENTIAL):
                path = "/length" if index % 2 else "/slow"
                response = await client.get(f"{server.url}{path}?n={index}")
                check_http10(response)
                expected = expected_length_body(index) if index % 2 else SLOW_BODY
                assert response.content == expected
        assert client.connections_opened == server.connections == SEQUENTIAL


@ASYNC
async def test_async_tasks_share_a_client_without_keep_alive(server: PeerServer) -> None:
    # Concurrent exchanges: none may be given a connection another one's server closed.
    bodies: list[bytes] = []

    async def fetch(client: AsyncClient) -> None:
        bodies.append((await client.get(server.url + "/slow")).content)

    async with AsyncClient(timeout=TIMEOUT, max_connections=5) as client:
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                for _ in range(10):
                    nursery.start_soon(fetch, client)
        assert bodies == [SLOW_BODY] * 10
        assert client.connections_opened == server.connections == 10


# -- blocking -----------------------------------------------------------------------------


@SYNC
def test_sync_close_delimited_bodies(server: PeerServer) -> None:
    with Client(timeout=TIMEOUT) as client:
        response = client.get(server.url + "/close-delimited")
        check_http10(response)
        assert "content-length" not in response.headers
        assert response.content == BIG
        digest, size = hashlib.sha256(), 0
        with client.stream("GET", server.url + "/close-delimited") as response:
            for chunk in response.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
        assert (size, digest.hexdigest()) == (len(BIG), hashlib.sha256(BIG).hexdigest())
        assert client.get(server.url + "/slow").content == SLOW_BODY
        response = client.get(server.url + "/empty")
        check_http10(response)
        assert response.content == b""
        response = client.post(server.url + "/echo", content=BIG)
        assert response.content == hashlib.sha256(BIG).hexdigest().encode()
        assert client.connections_opened == server.connections == 5


@SYNC
def test_sync_sequential_requests_without_keep_alive(server: PeerServer) -> None:
    with Client(timeout=TIMEOUT) as client:
        for index in range(SEQUENTIAL):
            path = "/length" if index % 2 else "/slow"
            response = client.get(f"{server.url}{path}?n={index}")
            check_http10(response)
            expected = expected_length_body(index) if index % 2 else SLOW_BODY
            assert response.content == expected
        assert client.connections_opened == server.connections == SEQUENTIAL


@SYNC
def test_sync_threads_share_a_client_without_keep_alive(server: PeerServer) -> None:
    # Concurrent exchanges: none may be given a connection another one's server closed.
    with Client(timeout=TIMEOUT, max_connections=5) as client, ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: client.get(server.url + "/slow"), range(10)))
        assert [response.content for response in responses] == [SLOW_BODY] * 10
        assert client.connections_opened == server.connections == 10
