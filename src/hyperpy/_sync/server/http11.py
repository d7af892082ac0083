# GENERATED from src/hyperpy/_async/server/http11.py by scripts/unasync.py: do not edit.
"""The server side of one HTTP/1.1 connection: parse, call the handler, respond, repeat."""

from __future__ import annotations

import enum
import logging
import time
from typing import Literal

from ..._backends import SyncClock, SyncStream
from ..._config import ServerLimits
from ..._core import access_log
from ..._core.engine import h1_server
from ..._core.h1 import (
    NEED_DATA,
    Data,
    EndOfMessage,
    Fields,
    RequestHead,
    RequestRejected,
)
from ..._core.websocket import (
    MAX_MESSAGE_SIZE,
    WebSocketProtocol,
    accept_fields,
    offered_subprotocols,
    websocket_key,
)
from ..._exceptions import InvalidURL, ReadTimeout, RemoteProtocolError, TransportError
from ..._models import URL, Headers, HeaderTypes, Request, Response
from ..websocket import WebSocket
from .context import H2CUpgrade, SyncServerContext

logger = logging.getLogger("hyperpy.server")


class Pause(enum.Enum):
    """What ``run`` returns when it gives up its thread (see there)."""

    PARKED = "parked"


PARKED = Pause.PARKED

# Unread request-body bytes we read and discard to keep a connection alive after
# the handler answered without reading them; beyond this the connection closes.
_DISCARD_LIMIT = 1024 * 1024


class SyncServerHTTP11Connection:
    """Serves requests from one client connection until it closes or the server drains."""

    # Slots: a server holds one per open connection, most of them idle.
    __slots__ = (
        "_busy",
        "_client",
        "_closed",
        "_context",
        "_first",
        "_first_head_at",
        "_h1",
        "_limits",
        "_scheme",
        "_stream",
        "_switched",
        "_upgrade",
        "idle_deadline",
    )

    def __init__(
        self,
        context: SyncServerContext,
        stream: SyncStream,
        initial: bytes,
        first_byte_at: float | None = None,
    ) -> None:
        self._context = context
        self._stream = stream
        self._limits: ServerLimits = context.limits
        self._h1 = h1_server(context.engine, context.limits)
        if initial:  # b"" would mean the end of the stream
            self._h1.receive(initial)
        self._scheme = "https" if stream.is_tls else "http"
        self._client = stream.peername  # recorded at accept: asking now cannot fail
        self._busy = False
        self._closed = False
        self._upgrade: H2CUpgrade | None = None
        self._switched = False  # a WebSocket took the connection over
        self._first = True  # no request served yet
        # When the first request head began to arrive (its bytes read already while
        # the server detected the protocol): its deadline counts from then.
        self._first_head_at = first_byte_at if initial else None
        # While idle (no byte of the next head yet): when it ends the connection.
        self.idle_deadline: float | None = None

    @property
    def stream(self) -> SyncStream:
        return self._stream

    def begin_shutdown(self) -> None:
        """Graceful shutdown: finish the request in flight (answered with
        ``Connection: close``), or close now if idle."""
        self._h1.close_after_response()
        if not self._busy and not self._closed:  # a closing connection closes itself
            self._closed = True
            self._context.spawn_task(self._stream.close)

    def abort(self) -> None:
        self._closed = True
        self._stream.close()

    def run(self) -> H2CUpgrade | Literal[Pause.PARKED] | None:
        """Serve requests until the connection ends; returns the upgrade if the
        client switched it to HTTP/2 (h2c), for the server to continue.

        Where idle connections are parked (the blocking world), it returns
        ``PARKED`` when it is idle with nothing to read; calling it again, once
        there is, goes on where it stopped.
        """
        h1 = self._h1
        while not self._closed:
            try:
                event = self._next_request()
            except RequestRejected as rejected:
                self._reject(rejected.status, rejected.detail)
                return None
            except (ReadTimeout, TransportError):
                break  # idle or slow client, or it went away: nothing in flight to answer
            if event is None:
                break
            if event is PARKED:
                return PARKED
            self._first = False
            self._busy = True
            try:
                keep = self._exchange(event)
            finally:
                self._busy = False
            if not keep or not h1.try_reuse():
                break
        if self._upgrade is not None:
            return self._upgrade  # the stream is HTTP/2's now: leave it open
        if not self._closed:
            self._closed = True
            self._stream.close_lingering()
        return None

    def _next_request(self) -> RequestHead | Literal[Pause.PARKED] | None:
        """The next request head; None when the client closed between requests, or
        the connection was idle too long; PARKED (see ``run``)."""
        h1 = self._h1
        limits = self._limits
        # Silence before a head is idleness (keep_alive_timeout); once its first byte
        # is in, the whole head must follow within header_read_timeout (slowloris).
        started = self._first_head_at if self._first else None
        while True:
            event = h1.next_event()
            if type(event) is RequestHead:
                return event
            if event is not NEED_DATA:
                return None  # CLOSED (or PAUSED, which cannot happen here)
            if started is None:
                now = SyncClock.now()
                if self.idle_deadline is None:
                    keep_alive = limits.keep_alive_timeout
                    self.idle_deadline = None if keep_alive is None else now + keep_alive
                    self._context.connection_idle(self._stream, self.idle_deadline)
                if self.idle_deadline is not None and now >= self.idle_deadline:
                    return None  # idle for the whole keep-alive timeout
                if self._context.parks and not self._stream.is_readable():
                    return PARKED
                # Where the server keeps idle deadlines it closes the stream at this
                # one, waking the read below; else the read is timed.
                if self._context.closes_idle or self.idle_deadline is None:
                    timeout = None
                else:
                    timeout = self.idle_deadline - now
            elif limits.header_read_timeout is None:
                timeout = None
            else:
                timeout = limits.header_read_timeout - (SyncClock.now() - started)
                if timeout <= 0:
                    raise RequestRejected(408, "request head not received in time")
            data = self._stream.receive(65536, timeout)
            if started is None:
                started = SyncClock.now()
                self.idle_deadline = None
                self._context.connection_busy(self._stream)
            h1.receive(data)

    def _exchange(self, head: RequestHead) -> bool:
        """Run the handler for one request and send its response; True to keep going."""
        h1 = self._h1
        headers = Headers.from_raw(head.headers)
        host = headers.get("host") or "{}:{}".format(*self._stream.sockname)
        # The target is in origin form, or "*" (OPTIONS), which the URL shows as "/*".
        target = head.target.decode("latin-1")
        try:
            url = URL(f"{self._scheme}://{host}{target if target != '*' else '/*'}")
        except InvalidURL:
            self._reject(400, "invalid Host or request target")
            return False
        body = SyncServerRequestBody(self)
        request = Request(
            head.method.decode("ascii"),
            url,
            headers=headers,
            stream=body,
            http_version=h1.http_version,
            client=self._client,
        )
        body.request = request
        key = websocket_key(request.method, h1.http_version, head.headers)
        if key is not None:
            request.upgrade = SyncWebSocketOffer(self, key, head.headers)
        settings = self._h1.wants_h2c(head.headers) if self._context.http2 else None
        if settings is not None and not self._stream.is_tls:
            self._switch_to_h2(settings, request)
            return False
        logged = self._context.access_log and access_log.enabled()
        if logged:
            started, wall = SyncClock.now(), time.time()
        try:
            response = self._context.call_app(request)
        except RemoteProtocolError as exc:
            # The request body broke the protocol while the handler read it.
            self._reject(400, str(exc))
            return False
        if response is None or self._switched:
            return False  # after a WebSocket, the connection ends with its handler
        try:
            sent = self._send_response(response)
        except TransportError:
            return False
        except Exception:
            logger.exception("error while streaming the response to %s", request.url)
            return False  # the response is cut short: closing is the only honest signal
        if logged:
            access_log.log_request(request, response.status, sent, wall, SyncClock.now() - started)
        return body.discard_rest()

    def _send_response(self, response: Response) -> int:
        """Send ``response``; return how many body bytes went out."""
        h1 = self._h1
        send = self._stream.send_all
        write_timeout = self._limits.write_timeout
        reason = response.reason.encode("latin-1")
        if not response.is_streaming:
            buffers = h1.whole_response(
                response.status,
                response.headers.raw,
                response._content or b"",
                reason,
                trailers=response.trailers.raw or None,
            )
            for buffer in buffers:
                send(buffer, write_timeout)
            return 0 if h1.answering_head else len(response._content or b"")
        head = h1.start_response(response.status, response.headers.raw, None, reason)
        sent = 0
        try:
            # Inside the try: a client gone before the head still gets the body closed.
            send(head, write_timeout)
            if not h1.answering_head:
                for chunk in response.iter_bytes():
                    sent += len(chunk)
                    for piece in h1.body(chunk):
                        send(piece, write_timeout)
        finally:
            response.close()
        # A streaming body may have set its trailers while it ran.
        send(h1.end_response(response.trailers.raw or None), write_timeout)
        return sent

    def _switch_to_h2(self, settings: bytes, request: Request) -> None:
        """Answer ``Upgrade: h2c`` with 101; ``run`` then hands the connection to the
        server as HTTP/2, the upgrading request being stream 1."""
        self.next_body_event()  # the (empty) end of the upgrading request
        self._stream.send_all(self._h1.switch_protocols(), self._limits.write_timeout)
        request._stream = None
        self._upgrade = H2CUpgrade(self._stream, settings, request, self._h1.trailing_data)
        self._closed = True  # from now on the HTTP/2 connection owns the stream

    def _reject(self, status: int, detail: str) -> None:
        """Answer a request we will not hand to the handler, then close cleanly."""
        self._closed = True
        data = self._h1.error_response(status, detail)
        try:
            if data:
                self._stream.send_all(data, self._limits.write_timeout)
        except TransportError:
            pass
        self._stream.close_lingering()

    def send_100_continue(self) -> None:
        if self._h1.expects_100_continue:
            self._stream.send_all(self._h1.continue_100(), self._limits.write_timeout)

    def next_body_event(self) -> Data | EndOfMessage:
        h1 = self._h1
        while True:
            try:
                event = h1.next_event()
            except RequestRejected as exc:
                raise RemoteProtocolError(exc.detail) from exc
            if event is NEED_DATA:
                data = self._stream.receive(65536, self._limits.body_read_timeout)
                h1.receive(data)
            elif type(event) is Data or type(event) is EndOfMessage:
                return event
            else:
                raise RemoteProtocolError("the client closed the connection mid-body")

    @property
    def expects_100_continue(self) -> bool:
        return self._h1.expects_100_continue


class SyncWebSocketOffer:
    """A request asking to open a WebSocket (``request.upgrade``): the handler
    accepts it, or answers with an ordinary response to refuse it."""

    def __init__(self, conn: SyncServerHTTP11Connection, key: bytes, fields: Fields) -> None:
        self._conn = conn
        self._key = key
        self.subprotocols = offered_subprotocols(fields)  # what the client offered

    def accept_websocket(
        self,
        subprotocol: str | None = None,
        *,
        headers: HeaderTypes = None,
        max_message_size: int = MAX_MESSAGE_SIZE,
    ) -> WebSocket:
        """Answer 101 and return the WebSocket; the connection ends with the handler."""
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(f"the client did not offer the subprotocol {subprotocol!r}")
        conn = self._conn
        if conn._switched:
            raise RuntimeError("this WebSocket was already accepted")
        while not isinstance(conn.next_body_event(), EndOfMessage):
            pass  # a GET's body is empty; the switch follows its end
        extra = Headers(headers).raw
        fields = accept_fields(self._key, subprotocol, extra)
        limits = conn._limits
        conn._stream.send_all(conn._h1.switch_protocols(fields), limits.write_timeout)
        conn._switched = True
        protocol = WebSocketProtocol(
            client_side=False, max_message_size=max_message_size, initial=conn._h1.trailing_data
        )
        return WebSocket(
            conn._stream, protocol, subprotocol=subprotocol, write_timeout=limits.write_timeout
        )


class SyncServerRequestBody:
    """A request body read from the connection as the handler asks for it."""

    def __init__(self, conn: SyncServerHTTP11Connection) -> None:
        self._conn = conn
        self._done = False
        self._started = False
        # Read now: the parser forgets that the client waits for 100 Continue once we
        # respond.
        self._expects_continue = conn.expects_100_continue
        self.received = 0
        self.request: Request | None = None  # set once the Request wraps this body

    def __iter__(self) -> SyncServerRequestBody:
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        if not self._started:
            self._started = True
            # The client waits for our go-ahead before sending the body (RFC 9110 §10.1.1).
            self._conn.send_100_continue()
        event = self._conn.next_body_event()
        if isinstance(event, Data):
            self.received += len(event.data)
            return event.data
        self._done = True
        if event.trailers and self.request is not None:
            self.request.trailers = Headers.from_raw(event.trailers)
        raise StopIteration

    def discard_rest(self) -> bool:
        """After the response: read and drop what the handler left unread.

        True when the connection is at a message boundary and may be reused.
        """
        if self._done:
            return True
        if not self._started and self._expects_continue:
            return False  # the client never sent the body; its framing state is unknown
        self._started = True
        discarded = 0
        try:
            while discarded <= _DISCARD_LIMIT:
                event = self._conn.next_body_event()
                if isinstance(event, EndOfMessage):
                    self._done = True
                    return True
                discarded += len(event.data)
        except TransportError:
            return False
        return False
