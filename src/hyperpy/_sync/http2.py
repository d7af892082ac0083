# GENERATED from src/hyperpy/_async/http2.py by scripts/unasync.py: do not edit.
"""A client HTTP/2 connection: many concurrent requests, one per stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._backends import SyncClock, SyncEvent, SyncShield, SyncStream, SyncTaskGroup
from .._config import H2Settings, Timeout
from .._core.h2 import CANCEL, REFUSED_STREAM, H2Protocol, request_headers, split_pseudo
from .._core.pool import Origin
from .._exceptions import PoolTimeout, RemoteProtocolError, TransportError
from .._models import Headers, Request, Response
from .http2_base import RequestNotProcessed, StopSending, SyncHTTP2Base

# Called once per exchange with (connection, reusable): the pool's bookkeeping.
Release = Callable[[Any, bool], list[Any]]


class SyncHTTP2Connection(SyncHTTP2Base):
    """Multiplexes requests over one HTTP/2 connection.

    Requests beyond the server's MAX_CONCURRENT_STREAMS wait here for a free
    stream (bounded by the pool timeout) rather than opening more connections.
    """

    multiplexed = True

    def __init__(
        self,
        stream: SyncStream,
        origin: Origin,
        settings: H2Settings,
        on_close: Callable[[SyncHTTP2Connection], None],
    ) -> None:
        super().__init__(stream, H2Protocol(client_side=True, settings=settings), settings)
        self._origin = origin
        self._on_close: Callable[[SyncHTTP2Connection], None] | None = on_close
        self.requests = 0

    @property
    def is_available(self) -> bool:
        """New requests may start here (no GOAWAY, no failure, not closed)."""
        return not self._closed and self._error is None and self._core.accepting_streams

    def is_stale(self) -> bool:
        return not self.is_available

    def start(self, task_group: SyncTaskGroup, timeout: Timeout) -> None:
        """Send our preface and settings; start the reader in ``task_group``."""
        self._write_timeout = timeout.write
        with self._lock:
            self._core.start()
            self._queue_locked()
        self._flush()
        task_group.start_soon(self._read_loop)

    def handle_request(
        self,
        request: Request,
        timeout: Timeout,
        release: Release,
    ) -> Response:
        """Send ``request`` on a new stream; return once the response head arrived."""
        self.requests += 1
        try:
            sid = self._open_stream(request, timeout)
        except BaseException:
            release(self, self.is_available)
            raise
        try:
            # Our HEADERS, unless another task sent them already. If this fails, the
            # stream's own state says what happened to it (a response may even have
            # come in full before the peer closed): _wait_headers reports it.
            self._flush_quietly()
            if request._content or request._stream is not None:
                self._send_body(sid, request, timeout)
            stream = self._wait_headers(sid, timeout.read)
        except BaseException as exc:
            refused = self._refused_error(sid, exc)
            self._finish_stream(sid, CANCEL)
            release(self, self.is_available)
            self.close_if_retired()
            if refused is not None:
                raise refused from exc
            raise
        assert stream.headers is not None
        pseudo, fields = split_pseudo(stream.headers)
        try:
            status = int(pseudo[b":status"])
        except (KeyError, ValueError):
            self._finish_stream(sid, 1)  # PROTOCOL_ERROR
            release(self, self.is_available)
            raise RemoteProtocolError("response without a valid :status") from None
        response = Response(
            status, headers=Headers.from_raw(fields), http_version="2", request=request
        )
        response._stream = SyncHTTP2ResponseBody(self, sid, timeout, release, response)
        return response

    def _open_stream(self, request: Request, timeout: Timeout) -> int:
        url = request.url
        headers = request_headers(
            request.method, url.scheme, url.authority, url.target, request.headers.raw
        )
        if request._content is not None and "content-length" not in request.headers:
            headers.append((b"content-length", str(len(request._content)).encode()))
        end_stream = not request._content and request._stream is None
        deadline = None if timeout.pool is None else SyncClock.now() + timeout.pool
        while True:
            waiter: SyncEvent | None = None
            with self._lock:
                if not self.is_available:
                    # Nothing was sent: the pool may send it on another connection.
                    raise RequestNotProcessed("the HTTP/2 connection stopped taking requests")
                if self._core.can_open_stream:
                    sid = self._core.open_stream(headers, end_stream)
                    self._waiters(sid)
                    self._queue_locked()
                else:
                    waiter = self._conn_waiters.register()
            if waiter is None:
                return sid  # the caller flushes, so a failed send still finishes the stream
            remaining = None if deadline is None else deadline - SyncClock.now()
            if (remaining is not None and remaining <= 0) or not waiter.wait(remaining):
                with self._lock:
                    self._conn_waiters.discard(waiter)
                raise PoolTimeout("no HTTP/2 stream became free in time")

    def _refused_error(self, sid: int, exc: BaseException) -> RequestNotProcessed | None:
        """If the peer refused ``sid`` (GOAWAY below it, or REFUSED_STREAM), that is what
        happened to this request, whatever error surfaced first.

        A flush also carries other streams' bytes, and a peer that said GOAWAY may close
        the connection at once: the write error that follows must not turn a request the
        peer proved it never processed (so one the pool may retry) into a WriteError.
        """
        if not isinstance(exc, TransportError) or isinstance(exc, RequestNotProcessed):
            return None
        with self._lock:
            stream = self._core.streams.get(sid)
            if stream is None or not (stream.refused or stream.reset_code == REFUSED_STREAM):
                return None
        return RequestNotProcessed(f"stream {sid} was refused by the peer ({exc})")

    def _send_body(self, sid: int, request: Request, timeout: Timeout) -> None:
        trailers = request.trailers.raw or None
        try:
            if request._content is not None:
                self._send_data(sid, request._content, trailers is None, timeout.write)
                if trailers is not None:
                    self._end_stream(sid, trailers)
                return
            for chunk in request.iter_bytes():
                self._send_data(sid, chunk, False, timeout.write)
            self._end_stream(sid, trailers)
        except StopSending:
            pass  # the server answered and reset with NO_ERROR: read its response

    def close_if_retired(self) -> None:
        """After GOAWAY the connection serves only its streams in flight: close it
        once the last one is done, rather than waiting for the server to."""
        if not self._closed and not self._core.accepting_streams and not self._core.streams:
            self.close()

    def _on_failed(self) -> None:
        self._notify_pool()

    def _on_changes(self, changes: object) -> None:
        if not self._core.accepting_streams:
            self._notify_pool()  # GOAWAY: no new streams here

    def _notify_pool(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close(self)

    def close(self) -> None:
        """Say GOAWAY and close; streams still open fail with a typed error."""
        if self._closed:
            return
        self._closed = True
        self._notify_pool()
        with self._lock:
            if self._error is None:
                self._core.close()
                self._queue_locked()
        with SyncShield(1.0):
            self._flush_quietly()
            self._stream.close()


class SyncHTTP2ResponseBody:
    """A response body read from one stream; credit returns to the server as it is read."""

    def __init__(
        self,
        conn: SyncHTTP2Connection,
        sid: int,
        timeout: Timeout,
        release: Release,
        response: Response,
    ) -> None:
        self._conn = conn
        self._sid = sid
        self._timeout = timeout
        self._release: Release | None = release
        self._response = response

    def __iter__(self) -> SyncHTTP2ResponseBody:
        return self

    def __next__(self) -> bytes:
        if self._release is None:
            raise StopIteration
        try:
            data = self._conn._read_chunk(self._sid, self._timeout.read)
        except BaseException:
            self.close()
            raise
        if data is not None:
            return data
        with self._conn._lock:
            trailers = self._conn._core.streams[self._sid].trailers
        if trailers:
            self._response.trailers = Headers.from_raw(trailers)
        self.close()
        raise StopIteration

    def close(self) -> None:
        """Release the stream: reset it if the body was not read to the end."""
        release, self._release = self._release, None
        if release is None:
            return
        self._conn._finish_stream(self._sid, CANCEL)
        release(self._conn, self._conn.is_available)
        self._conn.close_if_retired()
