"""HTTP/1.1 on h11: ``H1Client`` and ``H1Server``, the engine of pure Python.

h11 parses and serializes; these classes turn its events into ``h1``'s, apply
``h1``'s rules on them (limits, framing, keep-alive, error statuses), and raise
hyperpy's own errors, never h11's. The ``_async``/``_sync`` connections only move
the bytes they produce. h11 is named in this module only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import h11
import h11._headers

from .._config import ServerLimits
from .._exceptions import LocalProtocolError, RemoteProtocolError
from .fields import SERVER_HEADER, http_date
from .h1 import (
    CLOSED,
    COALESCE_LIMIT,
    CONNECTION_SPECIFIC,
    H2C_UPGRADE,
    NEED_DATA,
    PAUSED,
    REASON,
    Data,
    EndOfMessage,
    Event,
    Fields,
    RequestHead,
    RequestRejected,
    ResponseHead,
    ServerWriting,
    body_framing,
    check_request_head,
    coalesce,
    message,
)

if TYPE_CHECKING:
    from .h1 import H1ClientEngine, H1ServerEngine

__all__ = [
    "CLOSED",
    "COALESCE_LIMIT",
    "NEED_DATA",
    "PAUSED",
    "Data",
    "EndOfMessage",
    "Event",
    "Fields",
    "H1Client",
    "H1Server",
    "RequestHead",
    "RequestRejected",
    "ResponseHead",
    "body_framing",
    "coalesce",
]

# -- h11's events as hyperpy's --------------------------------------------------------


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


def _join(parts: list[bytes] | None) -> bytes:
    if not parts:
        return b""
    return parts[0] if len(parts) == 1 else b"".join(parts)


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
        except (h11.LocalProtocolError, LocalProtocolError) as exc:  # h11's: a bad trailer
            raise LocalProtocolError(f"the request could not end: {exc}") from exc

    def whole_request(
        self, method: bytes, target: bytes, headers: Fields, content: bytes
    ) -> list[bytes]:
        """The buffers that send a request whose body is in memory."""
        head = self.start_request(method, target, headers)
        pieces = self._send(h11.Data(data=content)) if content else []
        return message(head, pieces, self.end_request(), len(content))

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


class H1Server(ServerWriting):
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

    def _send(self, event: h11.Event) -> list[bytes]:
        try:
            return self._conn.send_with_data_passthrough(event) or []
        except h11.LocalProtocolError as exc:  # hyperpy's error, not h11's
            raise LocalProtocolError(str(exc)) from exc

    def continue_100(self) -> bytes:
        return _join(
            self._send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
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
        if reason and not REASON.fullmatch(reason):
            # h11 writes the reason as given: CR/LF in it would inject header fields.
            raise LocalProtocolError(f"invalid reason phrase {reason[:40]!r}")
        fields = [(n, v) for n, v in headers if n not in CONNECTION_SPECIFIC]
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
            response = h11.Response(status_code=status, headers=fields, reason=reason)
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(str(exc)) from exc
        return _join(self._send(response))

    def body(self, data: bytes) -> list[bytes]:
        """The framed pieces of a response-body chunk, small ones joined (HEAD
        responses yield none)."""
        return coalesce(self._send(h11.Data(data=data)))

    @property
    def trailers_allowed(self) -> bool:
        """Trailers need chunked framing, which HTTP/1.0 peers cannot read."""
        return self._conn.their_http_version != b"1.0"

    def end_response(self, trailers: Fields | None = None) -> bytes:
        """End of the response body, with trailers if its framing can carry them."""
        fields = trailers if trailers and self._chunked and not self._head else []
        try:
            end = h11.EndOfMessage(headers=fields)
        except h11.LocalProtocolError as exc:  # a malformed trailer field
            raise LocalProtocolError(str(exc)) from exc
        return _join(self._send(end))

    def switch_protocols(self, fields: Sequence[tuple[bytes, bytes]] = H2C_UPGRADE) -> bytes:
        """The 101 response that switches protocols (h2c by default; a WebSocket's
        accept fields otherwise)."""
        try:
            switch = h11.InformationalResponse(
                status_code=101, headers=list(fields), reason=b"Switching Protocols"
            )
        except h11.LocalProtocolError as exc:  # a malformed field (a WebSocket subprotocol)
            raise LocalProtocolError(str(exc)) from exc
        return _join(self._send(switch))

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


if TYPE_CHECKING:
    # mypy checks here that the classes have the interface the IO layers call.

    def _client_conforms(client: H1Client) -> H1ClientEngine:
        return client

    def _server_conforms(server: H1Server) -> H1ServerEngine:
        return server
