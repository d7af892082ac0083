"""A small HTTP forward proxy over loopback sockets, for the integration tests.

Plain ``socket`` and ``threading``, so the trio tests and the blocking tests can
both use it (it runs beside the code under test, never inside its event loop)::

    with ForwardProxy(auth=("u", "p")) as proxy:
        client.get("http://127.0.0.1:8000/x", proxy=proxy.url)
        assert proxy.requests == [("GET", "http://127.0.0.1:8000/x")]

It forwards absolute-form requests (``GET http://host:port/path HTTP/1.1``) to
the origin over a fresh connection per request, relaying the response as it
came (Content-Length, chunked or close-delimited bodies) and keeping the
client's connection alive when the response framing allows; it tunnels
``CONNECT host:port`` blindly in both directions; with ``auth`` it answers
``407`` to requests without the matching ``Proxy-Authorization``; a CONNECT or
request whose origin refuses the connection gets ``502``.
"""

from __future__ import annotations

import base64
import binascii
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

from threaded_peer import CHUNK, ThreadedPeer

# Fields that describe one connection, not the message: never passed on. (The
# Transfer-Encoding is kept: chunked bodies are relayed as they came.)
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "upgrade",
    }
)
MAX_HEAD = 64 * 1024
MAX_LINE = 8 * 1024

Headers = list[tuple[str, str]]


class BadMessage(Exception):
    """The peer sent something this proxy cannot relay: answer 400 (or drop it)."""


class _Reader:
    """Buffered reads from a socket: heads, lines, exact lengths."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(CHUNK)
        self.buffer += data
        return bool(data)

    def read_head(self) -> bytes | None:
        """The bytes up to and including the blank line; None at EOF before any byte."""
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buffer[: end + 4])
                del self.buffer[: end + 4]
                return head
            if len(self.buffer) > MAX_HEAD:
                raise BadMessage("head too large")
            if not self._fill():
                if self.buffer:
                    raise BadMessage("connection closed inside a head")
                return None

    def read_line(self) -> bytes:
        """One line, CRLF included."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                return line
            if len(self.buffer) > MAX_LINE:
                raise BadMessage("line too long")
            if not self._fill():
                raise BadMessage("connection closed inside a line")

    def iter_exact(self, size: int) -> Iterator[bytes]:
        """``size`` bytes, in pieces as they arrive."""
        while size > 0:
            if not self.buffer and not self._fill():
                raise BadMessage("connection closed inside a body")
            piece = bytes(self.buffer[:size])
            del self.buffer[:size]
            size -= len(piece)
            yield piece

    def iter_until_close(self) -> Iterator[bytes]:
        if self.buffer:
            yield bytes(self.buffer)
            self.buffer.clear()
        while True:
            data = self.sock.recv(CHUNK)
            if not data:
                return
            yield data

    def take_buffer(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def _parse_head(head: bytes) -> tuple[list[str], Headers]:
    """The start line's three parts and the header fields of a head."""
    lines = head[:-4].decode("latin-1").split("\r\n")
    start = lines[0].split(" ", 2)
    if len(start) != 3:
        raise BadMessage(f"malformed start line {lines[0]!r}")
    headers: Headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or line[:1] in " \t":
            raise BadMessage(f"malformed header line {line!r}")
        headers.append((name, value.strip()))
    return start, headers


def _values(headers: Headers, name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


def _tokens(headers: Headers, name: str) -> set[str]:
    return {
        token.strip().lower() for value in _values(headers, name) for token in value.split(",")
    } - {""}


def _body_framing(headers: Headers) -> int | None:
    """The body's length, or None for a chunked body (of a request or a response)."""
    codings = [
        t.strip().lower() for v in _values(headers, "transfer-encoding") for t in v.split(",")
    ]
    lengths = {v.strip() for v in _values(headers, "content-length")}
    if codings:
        if codings[-1] != "chunked" or lengths:
            raise BadMessage("unsupported Transfer-Encoding or both framings")
        return None
    if not lengths:
        return 0
    if len(lengths) > 1 or not all(v.isascii() and v.isdigit() for v in lengths):
        raise BadMessage("invalid Content-Length")
    return int(lengths.pop())


def _iter_body(reader: _Reader, length: int | None) -> Iterator[bytes]:
    """A body as it came on the wire: ``length`` bytes, or chunked with its framing."""
    if length is not None:
        yield from reader.iter_exact(length)
        return
    while True:
        line = reader.read_line()
        yield line
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadMessage(f"invalid chunk size line {line!r}") from None
        if size == 0:
            while True:  # trailer fields, then the blank line
                line = reader.read_line()
                yield line
                if line in (b"\r\n", b"\n"):
                    return
        yield from reader.iter_exact(size + 2)  # the data and its CRLF


def _split_authority(authority: str) -> tuple[str, int]:
    if authority.startswith("["):
        host, bracket, rest = authority[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise BadMessage(f"invalid authority {authority!r}")
        port_text = rest[1:]
    else:
        host, _, port_text = authority.rpartition(":")
    if not host or not (port_text.isascii() and port_text.isdigit()):
        raise BadMessage(f"invalid authority {authority!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise BadMessage(f"invalid port in {authority!r}")
    return host, port


def _simple_response(status: str, headers: Headers | None = None, *, close: bool) -> bytes:
    """A response without a body."""
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers or ()), "Content-Length: 0"]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class ForwardProxy(ThreadedPeer):
    """An HTTP/1.1 forward proxy on a loopback port, in threads.

    ``url`` is where to reach it; ``requests`` records ``(method, target)`` of
    every request line received (CONNECT included, and requests refused with
    407), ``request_headers`` their header fields (names in lower case, in the
    same order), ``connects`` the authority of every CONNECT received.
    ``errors`` collects unexpected exceptions of its threads (not network
    errors), for a test to assert on. At most ``max_connections`` clients are
    served at once; more are answered 503.
    """

    _scheme = "http"
    _thread_name = "forward-proxy"

    def __init__(
        self,
        *,
        auth: tuple[str, str] | None = None,
        host: str = "127.0.0.1",
        max_connections: int = 32,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(host=host, max_connections=max_connections, timeout=timeout)
        self.auth = auth
        self.requests: list[tuple[str, str]] = []
        self.request_headers: list[dict[str, str]] = []
        self.connects: list[str] = []

    def _refuse(self, client: socket.socket) -> None:
        # Unlike SOCKS, HTTP can say "busy" before reading anything: answer 503.
        try:
            client.sendall(_simple_response("503 Service Unavailable", close=True))
        except OSError:
            pass
        super()._refuse(client)

    # -- one client connection ------------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        reader = _Reader(client)
        while not self._stopping.is_set():
            try:
                if not self._serve_one(client, reader):
                    return
            except BadMessage:
                try:
                    client.sendall(_simple_response("400 Bad Request", close=True))
                except OSError:
                    pass
                return

    def _serve_one(self, client: socket.socket, reader: _Reader) -> bool:
        """Serve one request; whether the client's connection stays open."""
        head = reader.read_head()
        if head is None:
            return False
        (method, target, version), headers = _parse_head(head)
        self.requests.append((method, target))
        self.request_headers.append({name.lower(): value for name, value in headers})
        if method == "CONNECT":
            self.connects.append(target)
        keep_alive = version == "HTTP/1.1" and "close" not in _tokens(headers, "connection")
        if not self._authorized(headers):
            return self._refuse_auth(client, reader, method, headers, keep_alive)
        if method == "CONNECT":
            self._tunnel(client, reader, target)
            return False
        return self._forward(client, reader, method, target, headers, keep_alive)

    def _authorized(self, headers: Headers) -> bool:
        if self.auth is None:
            return True
        for value in _values(headers, "proxy-authorization"):
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "basic":
                continue
            try:
                credentials = base64.b64decode(token.strip(), validate=True)
            except (binascii.Error, ValueError):
                continue
            if credentials == f"{self.auth[0]}:{self.auth[1]}".encode():
                return True
        return False

    def _refuse_auth(
        self, client: socket.socket, reader: _Reader, method: str, headers: Headers, keep: bool
    ) -> bool:
        # A client that waits for 100 Continue may or may not send its body now:
        # the connection cannot be reused safely.
        if "100-continue" in _tokens(headers, "expect"):
            keep = False
        elif method != "CONNECT":
            for _ in _iter_body(reader, _body_framing(headers)):
                pass  # discard the body, so that the next request can follow
        challenge = [("Proxy-Authenticate", 'Basic realm="proxy"')]
        client.sendall(
            _simple_response("407 Proxy Authentication Required", challenge, close=not keep)
        )
        return keep

    def _tunnel(self, client: socket.socket, reader: _Reader, authority: str) -> None:
        host, port = _split_authority(authority)
        try:
            upstream = self._open(host, port)
        except OSError:
            client.sendall(_simple_response("502 Bad Gateway", close=True))
            return
        try:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            early = reader.take_buffer()  # bytes the client sent before our answer
            if early:
                upstream.sendall(early)
            self._relay(client, upstream)
        finally:
            self._forget(upstream)

    def _forward(
        self,
        client: socket.socket,
        reader: _Reader,
        method: str,
        target: str,
        headers: Headers,
        keep_alive: bool,
    ) -> bool:
        url = urlsplit(target)
        if url.scheme.lower() != "http" or not url.hostname:
            raise BadMessage(f"not an absolute http URL: {target!r}")
        try:
            port = url.port or 80
        except ValueError:
            raise BadMessage(f"invalid port in {target!r}") from None
        length = _body_framing(headers)
        try:
            upstream = self._open(url.hostname, port)
        except OSError:
            if "100-continue" not in _tokens(headers, "expect"):
                for _ in _iter_body(reader, length):
                    pass
            client.sendall(_simple_response("502 Bad Gateway", close=True))
            return False
        try:
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            self._send_request(client, reader, upstream, method, path, url.netloc, headers, length)
            return self._relay_response(client, _Reader(upstream), method) and keep_alive
        finally:
            self._forget(upstream)

    def _send_request(
        self,
        client: socket.socket,
        reader: _Reader,
        upstream: socket.socket,
        method: str,
        path: str,
        netloc: str,
        headers: Headers,
        length: int | None,
    ) -> None:
        """Send the request to the origin in origin form, with its body as it comes."""
        dropped = HOP_BY_HOP | _tokens(headers, "connection") | {"expect"}
        lines = [f"{method} {path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in dropped]
        if not _values(headers, "host"):
            lines.append(f"Host: {netloc.rpartition('@')[2]}")
        lines.append("Connection: close")  # one origin connection per request
        if "100-continue" in _tokens(headers, "expect"):
            # Answer for the origin: this proxy reads the whole body before it
            # hears back from the origin, so the client must not wait.
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for piece in _iter_body(reader, length):
            upstream.sendall(piece)

    def _relay_response(self, client: socket.socket, origin: _Reader, method: str) -> bool:
        """Relay the origin's response; whether the client's connection may stay open."""
        while True:
            head = origin.read_head()
            if head is None:
                client.sendall(_simple_response("502 Bad Gateway", close=True))
                return False
            (_version, status_text, _reason), headers = _parse_head(head)
            if not (status_text.isascii() and status_text.isdigit()):
                raise BadMessage(f"invalid status {status_text!r}")
            status = int(status_text)
            if 100 <= status < 200 and status != 101:
                client.sendall(head)  # an interim response; the final one follows
                continue
            break
        length: int | None = 0
        if method == "HEAD" or status in (204, 304):
            until_close = False
        elif status == 101:
            until_close = True  # switching protocols is not relayed: end the connection
        else:
            length = _body_framing(headers)
            # A body without framing ends when the origin closes: so must the
            # client's connection then.
            until_close = length == 0 and not _values(headers, "content-length")
        dropped = HOP_BY_HOP | _tokens(headers, "connection")
        start = head.split(b"\r\n", 1)[0].decode("latin-1")
        lines = [start, *(f"{k}: {v}" for k, v in headers if k.lower() not in dropped)]
        if until_close:
            lines.append("Connection: close")
        client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if until_close:
            if status != 101:
                for piece in origin.iter_until_close():
                    client.sendall(piece)
            return False
        for piece in _iter_body(origin, length):
            client.sendall(piece)
        return True
