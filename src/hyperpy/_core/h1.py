"""HTTP/1.1, engine-independent: hyperpy's events, its rules, and the engine interface.

An engine (``h1_h11`` on h11, ``h1_zttp`` on zttp) parses and serializes; what
leaves it are the events defined here (``RequestHead``, ``ResponseHead``,
``Data``, ``EndOfMessage``, ``CLOSED``, ``NEED_DATA``, ``PAUSED``), and the rules
hyperpy adds on those events (head limits, smuggling, target forms, body framing,
the h2c upgrade, error responses) are here, so they hold whichever engine parses
underneath. ``H1ClientEngine`` and ``H1ServerEngine`` are what the
``_async``/``_sync`` connections call on an engine: they only move the bytes it
decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, Union

from .._config import ServerLimits
from .._exceptions import LocalProtocolError
from .h2 import upgrade_settings_valid

Fields = list[tuple[bytes, bytes]]
# The fields of the 101 that switches a connection to h2c.
H2C_UPGRADE = ((b"connection", b"Upgrade"), (b"upgrade", b"h2c"))
# RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
REASON = re.compile(rb"[\t \x21-\x7e\x80-\xff]+")

# Fields of the connection, not of the response: a server drops them from a handler's
# headers and sets its own framing and persistence.
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


# -- events -------------------------------------------------------------------------


class _Signal:
    """A named singleton event (no data of its own)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA = _Signal("NEED_DATA")  # feed more bytes with ``receive``
PAUSED = _Signal("PAUSED")  # the peer sent the next message before this one was answered
CLOSED = _Signal("CLOSED")  # the peer closed its side cleanly between messages


class RequestHead(NamedTuple):
    """A request line and its header fields (names lowercase).

    On the server, after hyperpy's checks, ``target`` is in origin form (or
    ``*``) and ``authority`` holds the host of an absolute-form target, which
    replaces Host (RFC 9112 §3.2.2).
    """

    method: bytes
    target: bytes
    headers: Fields
    http_version: bytes
    authority: bytes | None = None


class ResponseHead(NamedTuple):
    """A status line and its header fields; ``status`` < 200 is an interim response."""

    status: int
    reason: bytes
    headers: Fields
    http_version: bytes


class Data(NamedTuple):
    """A piece of a message body."""

    data: bytes


class EndOfMessage(NamedTuple):
    """The end of a message body, with its trailer fields (if any)."""

    trailers: Fields


Event = Union[RequestHead, ResponseHead, Data, EndOfMessage, _Signal]


def origin_form(request: RequestHead) -> RequestHead:
    """The request with its target in origin form (RFC 9112 §3.2).

    An absolute-form target (``http://host/path``, what proxies are sent) must be
    accepted by a server: its authority replaces Host (§3.2.2), so the Host field
    is rewritten to match. Asterisk form is only for OPTIONS; authority form only
    for CONNECT, which was refused before this.
    """
    target = request.target
    if target[:1] == b"/":
        return request
    if target == b"*" and request.method == b"OPTIONS":
        return request
    scheme, sep, rest = target.partition(b"://")
    if sep and scheme.lower() in (b"http", b"https"):
        end = len(rest)
        for mark in (b"/", b"?", b"#"):
            found = rest.find(mark)
            if 0 <= found < end:
                end = found
        authority = rest[:end].rpartition(b"@")[2]  # userinfo is not for the server
        path = rest[end:].partition(b"#")[0]
        if path[:1] != b"/":
            path = b"/" + path  # http://host and http://host?q have the path "/"
        if authority:
            headers = [(n, v) for n, v in request.headers if n != b"host"]
            headers.append((b"host", authority))
            return request._replace(target=path, headers=headers, authority=authority)
    raise RequestRejected(400, "the request target is not in origin or absolute form")


# -- framing --------------------------------------------------------------------------


# Pieces of a framed chunk up to this size go out in one send, not three
# (chunk-size line, data, CRLF): a copy is cheaper than two more syscalls.
COALESCE_LIMIT = 64 * 1024


def coalesce(pieces: list[bytes]) -> list[bytes]:
    """Join a small framed chunk's pieces so it costs one send."""
    if len(pieces) > 1 and sum(len(p) for p in pieces) <= COALESCE_LIMIT:
        return [b"".join(pieces)]
    return pieces


def message(head: bytes, pieces: list[bytes], tail: bytes, body_size: int) -> list[bytes]:
    """The buffers for a whole message: one when the body is small, else as framed."""
    if body_size <= COALESCE_LIMIT:
        return [b"".join([head, *pieces, tail])]
    return [head, *pieces, tail] if tail else [head, *pieces]


def body_framing(headers: Fields, length: int | None, allow_chunked: bool = True) -> Fields:
    """Add Content-Length or chunked framing unless the caller already chose one."""
    for name, _ in headers:
        if name in (b"content-length", b"transfer-encoding"):
            return headers
    if length is not None:
        return [*headers, (b"content-length", str(length).encode())]
    if allow_chunked:
        return [*headers, (b"transfer-encoding", b"chunked")]
    return headers


# -- the server's rules ---------------------------------------------------------------


@dataclass(frozen=True)
class RequestRejected(Exception):
    """A request the server must refuse with ``status`` before any handler sees it."""

    status: int
    detail: str


def check_request_head(limits: ServerLimits, request: RequestHead) -> RequestHead:
    """hyperpy's rules for a request head, whatever engine parsed it; returns the
    head with its target in origin form, or raises ``RequestRejected``."""
    if not request.http_version.startswith(b"1."):
        raise RequestRejected(505, "only HTTP/1.x is served here")
    if len(request.target) > limits.max_target_bytes:
        raise RequestRejected(414, "request target too long")
    if len(request.headers) > limits.max_header_count:
        raise RequestRejected(431, "too many header fields")
    # The engine bounds only heads still incomplete; one that arrived whole in a
    # single read is measured here (a lower bound of its raw size: optional
    # whitespace aside).
    size = len(request.method) + len(request.target) + 12
    lengths = transfer_codings = 0
    for name, value in request.headers:
        size += len(name) + len(value) + 4
        if name == b"content-length":
            lengths += 1
        elif name == b"transfer-encoding":
            transfer_codings += 1
    if size > limits.max_head_bytes:
        raise RequestRejected(431, "request head too large")
    if transfer_codings and lengths:
        # Request smuggling: a front end that frames by Content-Length and a back
        # end that frames by Transfer-Encoding (or the reverse) disagree on where
        # the next request starts. RFC 9112 §6.1 allows rejecting it, and the
        # connection must close after the response either way (§6.3).
        raise RequestRejected(400, "both Content-Length and Transfer-Encoding: ambiguous framing")
    if request.method == b"CONNECT":
        raise RequestRejected(501, "CONNECT (tunnelling) is not supported here")
    return origin_form(request)


class ServerWriting:
    """What both engines' server sides build the same way from their own
    ``start_response``/``body``/``end_response``: whole responses, error responses,
    and the h2c upgrade check."""

    __slots__ = ()
    _head: bool
    _closing: bool

    @property
    def trailers_allowed(self) -> bool:
        raise NotImplementedError

    def start_response(
        self,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        length: int | None,
        reason: bytes = b"",
        now: float | None = None,
    ) -> bytes:
        raise NotImplementedError

    def body(self, data: bytes) -> list[bytes]:
        raise NotImplementedError

    def close_after_response(self) -> None:
        raise NotImplementedError

    def end_response(self, trailers: Fields | None = None) -> bytes:
        raise NotImplementedError

    def whole_response(
        self,
        status: int,
        headers: Fields,
        content: bytes,
        reason: bytes = b"",
        *,
        trailers: Fields | None = None,
    ) -> list[bytes]:
        """The buffers that send a response whose body is in memory.

        Trailers travel only with chunked framing, so a response that carries
        them is chunked rather than given a Content-Length. The answer to HEAD
        has the length of the body it does not carry, and no trailers.
        """
        if trailers and (self._head or not self.trailers_allowed):
            trailers = None
        head = self.start_response(
            status, headers, len(content) if trailers is None else None, reason
        )
        pieces = [] if self._head or not content else self.body(content)
        return message(head, pieces, self.end_response(trailers), len(content))

    def error_response(self, status: int, detail: str) -> bytes:
        """A complete short error response that ends the connection."""
        body = f"{status} {detail}\n".encode("latin-1", "replace")[:512]
        self.close_after_response()
        try:
            return b"".join(
                self.whole_response(status, [(b"content-type", b"text/plain; charset=utf-8")], body)
            )
        except LocalProtocolError:
            return b""  # a response is already under way: only closing is left

    def wants_h2c(self, headers: Fields) -> bytes | None:
        """The HTTP2-Settings value if this request asks to upgrade to h2c and may.

        Only requests without a body are upgraded (RFC 9113 dropped h2c upgrade;
        clients such as curl still send it, always with bodiless requests).
        """
        upgrade = settings = None
        for name, value in headers:
            if name == b"upgrade":
                upgrade = value
            elif name == b"http2-settings":
                if settings is not None:
                    return None  # more than one: no upgrade (RFC 7540 §3.2.1)
                settings = value
            elif name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                return None
        if upgrade is None or settings is None:
            return None
        tokens = {t.strip().lower() for t in upgrade.split(b",")}
        # A malformed value is not worth a switch: the request is served over HTTP/1.1.
        return settings if b"h2c" in tokens and upgrade_settings_valid(settings) else None


# -- the engine interface -------------------------------------------------------------
#
# What the IO layers call on an engine's ``H1Client`` and ``H1Server``; each engine
# module makes mypy check that its classes provide it.


class H1ClientEngine(Protocol):
    """The client side of one HTTP/1.1 connection, on any engine."""

    def start_request(self, method: bytes, target: bytes, headers: Fields) -> bytes:
        """The request head."""

    def body(self, data: bytes) -> list[bytes]:
        """The framed pieces of a request-body chunk."""

    def end_request(self, trailers: Fields | None = None) -> bytes:
        """The end of the request body, with trailers (a streamed, chunked body only)."""

    def whole_request(
        self, method: bytes, target: bytes, headers: Fields, content: bytes
    ) -> list[bytes]:
        """The buffers that send a request whose body is in memory."""

    def receive(self, data: bytes) -> None:
        """Feed bytes from the server (``b""``: it closed its side)."""

    def next_event(self) -> Event:
        """The next parsed event; a malformed response raises RemoteProtocolError."""

    @property
    def response_complete(self) -> bool:
        """The whole response has been received."""

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after a 101 that switched protocols."""

    def try_reuse(self) -> bool:
        """After a complete exchange: reset for the next request, if keep-alive allows."""


class H1ServerEngine(Protocol):
    """The server side of one HTTP/1.1 connection, on any engine, with its limits."""

    def receive(self, data: bytes) -> None:
        """Feed bytes from the client (``b""``: it closed its side)."""

    def next_event(self) -> Event:
        """The next request event; a request that breaks a rule raises RequestRejected."""

    @property
    def expects_100_continue(self) -> bool:
        """The client waits for a 100 (Continue) before it sends the request body."""

    @property
    def answering_head(self) -> bool:
        """The response being made answers a HEAD request: no body, no trailers."""

    @property
    def http_version(self) -> str:
        """The request's HTTP version ("1.0" or "1.1")."""

    def continue_100(self) -> bytes:
        """The 100 (Continue) interim response."""

    def start_response(
        self,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        length: int | None,
        reason: bytes = b"",
        now: float | None = None,
    ) -> bytes:
        """The response head, with Date, Server, framing and Connection: close added."""

    def body(self, data: bytes) -> list[bytes]:
        """The framed pieces of a response-body chunk (none when answering HEAD)."""

    def end_response(self, trailers: Fields | None = None) -> bytes:
        """The end of the response body, with trailers if its framing can carry them."""

    def whole_response(
        self,
        status: int,
        headers: Fields,
        content: bytes,
        reason: bytes = b"",
        *,
        trailers: Fields | None = None,
    ) -> list[bytes]:
        """The buffers that send a response whose body is in memory."""

    def error_response(self, status: int, detail: str) -> bytes:
        """A complete short error response that ends the connection."""

    def close_after_response(self) -> None:
        """Shutting down: the next response carries ``Connection: close``."""

    def wants_h2c(self, headers: Fields) -> bytes | None:
        """The HTTP2-Settings value if this request asks to upgrade to h2c and may."""

    def switch_protocols(self, fields: Sequence[tuple[bytes, bytes]] = H2C_UPGRADE) -> bytes:
        """The 101 response that switches protocols (to h2c unless given fields)."""

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after the request that switched protocols."""

    def try_reuse(self) -> bool:
        """After a complete exchange: reset for the next request, if keep-alive allows."""
