"""HTTP/1.1 as sans-IO state machines: a parser engine wrapped with hyperpy's limits
and policies.

These classes decide (framing, keep-alive, limits, error statuses) and turn
events into bytes; the ``_async``/``_sync`` connections only move those bytes.

The parser seam: the engine (h11 today) is named in this module only, and what
leaves it are hyperpy's own events below (``RequestHead``, ``ResponseHead``,
``Data``, ``EndOfMessage``, ``CLOSED``, ``NEED_DATA``). Every check that hyperpy
adds (head limits, framing, keep-alive) is made here on those events, so it
holds whichever engine parses underneath.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Union

import h11
import h11._headers

from .._config import ServerLimits
from .._exceptions import LocalProtocolError, RemoteProtocolError
from .fields import SERVER_HEADER, http_date
from .h2 import upgrade_settings_valid

Fields = list[tuple[bytes, bytes]]
_H2C_UPGRADE = ((b"connection", b"Upgrade"), (b"upgrade", b"h2c"))
# RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
_REASON = re.compile(rb"[\t \x21-\x7e\x80-\xff]+")

_CONNECTION_SPECIFIC = frozenset(
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


def _fields(headers: h11._headers.Headers) -> Fields:
    # h11 keeps (raw name, lowercase name, value) triples; reading them directly is
    # several times faster than iterating its Sequence interface item by item.
    return [(name, value) for _, name, value in headers._full_items]


def _request_head(event: h11.Request) -> RequestHead:
    return RequestHead(event.method, event.target, _fields(event.headers), event.http_version)


def _response_head(event: h11.Response | h11.InformationalResponse) -> ResponseHead:
    return ResponseHead(event.status_code, event.reason, _fields(event.headers), event.http_version)


def _end(event: h11.EndOfMessage) -> EndOfMessage:
    return EndOfMessage(_fields(event.headers))


# The engine's event types and hyperpy's event for each: one dict lookup per event
# (this runs for every body chunk).
_CONVERT: dict[type[Any], Callable[[Any], Event]] = {
    h11.Request: _request_head,
    h11.Response: _response_head,
    h11.InformationalResponse: _response_head,
    h11.EndOfMessage: _end,
    h11.ConnectionClosed: lambda event: CLOSED,
    h11.NEED_DATA: lambda event: NEED_DATA,
    h11.PAUSED: lambda event: PAUSED,
}


def _event(event: Any) -> Event:
    """hyperpy's event for what the engine produced."""
    if type(event) is h11.Data:
        return Data(bytes(event.data))
    return _CONVERT[event if event is h11.NEED_DATA or event is h11.PAUSED else type(event)](event)


def _origin_form(request: RequestHead) -> RequestHead:
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


def _join(parts: list[bytes] | None) -> bytes:
    if not parts:
        return b""
    return parts[0] if len(parts) == 1 else b"".join(parts)


# Pieces of a framed chunk up to this size go out in one send, not three
# (chunk-size line, data, CRLF): a copy is cheaper than two more syscalls.
COALESCE_LIMIT = 64 * 1024


def coalesce(pieces: list[bytes]) -> list[bytes]:
    """Join a small framed chunk's pieces so it costs one send."""
    if len(pieces) > 1 and sum(len(p) for p in pieces) <= COALESCE_LIMIT:
        return [b"".join(pieces)]
    return pieces


def _message(head: bytes, pieces: list[bytes], tail: bytes, body_size: int) -> list[bytes]:
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


# -- the client -----------------------------------------------------------------------


class H1Client:
    """One client-side HTTP/1.1 connection's protocol state."""

    __slots__ = ("_conn",)

    def __init__(self, max_head_bytes: int = 64 * 1024) -> None:
        self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head_bytes)

    def _send(self, event: h11.Event) -> list[bytes]:
        try:
            return self._conn.send_with_data_passthrough(event) or []
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(str(exc)) from exc

    def start_request(self, method: bytes, target: bytes, headers: Fields) -> bytes:
        """The request head."""
        try:
            request = h11.Request(method=method, target=target, headers=headers)
        except h11.LocalProtocolError as exc:  # e.g. no Host: hyperpy's error, not h11's
            raise LocalProtocolError(str(exc)) from exc
        return _join(self._send(request))

    def body(self, data: bytes) -> list[bytes]:
        """The framed pieces of a request-body chunk, small ones joined (the data
        itself is not copied unless joined)."""
        return coalesce(self._send(h11.Data(data=data)))

    def end_request(self, trailers: Fields | None = None) -> bytes:
        """End of the request body; ``trailers`` need chunked framing (a streamed body)."""
        try:
            return _join(self._send(h11.EndOfMessage(headers=trailers or [])))
        except LocalProtocolError as exc:
            raise LocalProtocolError(
                f"request body did not match its declared length: {exc}"
            ) from exc

    def whole_request(
        self, method: bytes, target: bytes, headers: Fields, content: bytes
    ) -> list[bytes]:
        """The buffers that send a request whose body is in memory."""
        head = self.start_request(method, target, headers)
        pieces = self._send(h11.Data(data=content)) if content else []
        return _message(head, pieces, self.end_request(), len(content))

    def receive(self, data: bytes) -> None:
        """Feed bytes from the server (``b""``: it closed its side)."""
        self._conn.receive_data(data)

    def next_event(self) -> Event:
        """The next parsed event; a malformed response raises RemoteProtocolError."""
        try:
            return _event(self._conn.next_event())
        except h11.RemoteProtocolError as exc:
            raise RemoteProtocolError(f"malformed response: {exc}") from exc

    @property
    def response_complete(self) -> bool:
        return self._conn.their_state is h11.DONE

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after a 101 that switched protocols (a WebSocket's first)."""
        return bytes(self._conn.trailing_data[0])

    @property
    def request_complete(self) -> bool:
        return self._conn.our_state is h11.DONE

    @property
    def server_closed(self) -> bool:
        """The server will not accept another request on this connection."""
        return self._conn.their_state in (h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)

    def try_reuse(self) -> bool:
        """After a complete exchange: reset for the next request, if keep-alive allows.

        Bytes that came after the response (an unsolicited second response, or
        garbage) make the connection unusable: they must never be read as the
        answer to the next request.
        """
        conn = self._conn
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            if conn.trailing_data[0]:
                return False
            conn.start_next_cycle()
            return True
        return False


# -- the server -----------------------------------------------------------------------


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
    return _origin_form(request)


class _ServerWriting:
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
        return _message(head, pieces, self.end_response(trailers), len(content))

    def error_response(self, status: int, detail: str) -> bytes:
        """A complete short error response that ends the connection."""
        body = f"{status} {detail}\n".encode("latin-1", "replace")[:512]
        self.close_after_response()
        try:
            return b"".join(
                self.whole_response(status, [(b"content-type", b"text/plain; charset=utf-8")], body)
            )
        except (h11.LocalProtocolError, LocalProtocolError):
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


class H1Server(_ServerWriting):
    """One server-side HTTP/1.1 connection's protocol state, with its limits."""

    __slots__ = ("_chunked", "_closing", "_conn", "_head", "_limits")

    def __init__(self, limits: ServerLimits) -> None:
        self._limits = limits
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head_bytes)
        self._closing = False  # the next response says Connection: close
        self._chunked = False  # the response in progress is chunked (so may carry trailers)
        self._head = False  # the request being answered is a HEAD: the answer has no body

    def receive(self, data: bytes) -> None:
        """Feed bytes from the client (``b""``: it closed its side)."""
        self._conn.receive_data(data)

    def next_event(self) -> Event:
        """The next request event; a request that breaks a rule raises RequestRejected."""
        try:
            event = _event(self._conn.next_event())
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            if status == 400 and "exceeds" in str(exc):
                status = 431
            elif status == 501 and "Transfer-Encoding" in str(exc):
                # A transfer coding other than a lone "chunked": where chunked is not
                # final the body's length is unknowable, which MUST get 400 (RFC 9112
                # §6.3); the engine does not say which case it was, so both get 400.
                status = 400
            raise RequestRejected(status, str(exc)) from exc
        if type(event) is RequestHead:
            event = self._check_head(event)
            self._head = event.method == b"HEAD"
        return event

    def _check_head(self, request: RequestHead) -> RequestHead:
        return check_request_head(self._limits, request)

    @property
    def expects_100_continue(self) -> bool:
        return bool(self._conn.client_is_waiting_for_100_continue)

    @property
    def answering_head(self) -> bool:
        """The response being made answers a HEAD request: it carries no body, and
        so no trailers either."""
        return self._head

    @property
    def http_version(self) -> str:
        version = self._conn.their_http_version
        return version.decode() if version else "1.1"

    @property
    def can_respond(self) -> bool:
        """True while a response may still be started (nothing sent yet)."""
        return self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE)

    @property
    def keep_alive(self) -> bool:
        """The connection may serve another request after this one."""
        return self._conn.our_state is not h11.MUST_CLOSE and not self._closing

    @property
    def request_complete(self) -> bool:
        return self._conn.their_state is h11.DONE

    @property
    def peer_closed(self) -> bool:
        return self._conn.their_state is h11.CLOSED

    def close_after_response(self) -> None:
        """Shutting down: the next response carries ``Connection: close``."""
        self._closing = True

    def continue_100(self) -> bytes:
        return _join(
            self._conn.send_with_data_passthrough(
                h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
            )
        )

    def start_response(
        self,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        length: int | None,
        reason: bytes = b"",
        now: float | None = None,
    ) -> bytes:
        """Response head; adds Date, Server, framing and (when closing) Connection: close."""
        if reason and not _REASON.fullmatch(reason):
            # h11 writes the reason as given: CR/LF in it would inject header fields.
            raise LocalProtocolError(f"invalid reason phrase {reason[:40]!r}")
        fields = [(n, v) for n, v in headers if n not in _CONNECTION_SPECIFIC]
        names = {n for n, _ in fields}
        if b"date" not in names:
            fields.append((b"date", http_date(now)))
        if b"server" not in names:
            fields.append((b"server", SERVER_HEADER))
        # HTTP/1.0 peers cannot parse chunked: no length means close-delimited.
        if status >= 200 and status not in (204, 304):
            # 204 and 304 carry no body and so no framing fields (RFC 9110 §8.6).
            chunked_ok = self._conn.their_http_version != b"1.0"
            fields = body_framing(fields, length, allow_chunked=chunked_ok)
        self._chunked = (b"transfer-encoding", b"chunked") in fields
        if self._closing:
            fields.append((b"connection", b"close"))
        try:
            return _join(
                self._conn.send_with_data_passthrough(
                    h11.Response(status_code=status, headers=fields, reason=reason)
                )
            )
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(str(exc)) from exc

    def body(self, data: bytes) -> list[bytes]:
        """The framed pieces of a response-body chunk, small ones joined (HEAD
        responses yield none)."""
        return coalesce(self._conn.send_with_data_passthrough(h11.Data(data=data)) or [])

    @property
    def trailers_allowed(self) -> bool:
        """Trailers need chunked framing, which HTTP/1.0 peers cannot read."""
        return self._conn.their_http_version != b"1.0"

    def end_response(self, trailers: Fields | None = None) -> bytes:
        """End of the response body, with trailers if its framing can carry them."""
        fields = trailers if trailers and self._chunked and not self._head else []
        return _join(self._conn.send_with_data_passthrough(h11.EndOfMessage(headers=fields)))

    def switch_protocols(self, fields: Sequence[tuple[bytes, bytes]] = _H2C_UPGRADE) -> bytes:
        """The 101 response that switches protocols (h2c by default; a WebSocket's
        accept fields otherwise)."""
        return _join(
            self._conn.send_with_data_passthrough(
                h11.InformationalResponse(
                    status_code=101, headers=list(fields), reason=b"Switching Protocols"
                )
            )
        )

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after the request that switched protocols."""
        return bytes(self._conn.trailing_data[0])

    def try_reuse(self) -> bool:
        """After a complete exchange: reset for the next request, if keep-alive allows."""
        conn = self._conn
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE and not self._closing:
            conn.start_next_cycle()
            self._head = False  # the next request is not known to be a HEAD yet
            return True
        return False
