"""A client HTTP/2 connection: many concurrent requests, one per stream."""

from __future__ import annotations

from collections.abc import Callable

from ..._backends import AsyncClock, AsyncEvent, AsyncStream, AsyncTaskGroup
from ..._config import H2Settings
from ..._core.deadline import StepLimits, connection_limits
from ..._core.h2 import Changes, ErrorCodes, Fields, H2Protocol
from ..._core.h2_heads import request_headers, response_status
from ..._exceptions import (
    ConnectionTerminated,
    PoolTimeout,
    RemoteProtocolError,
    RequestNotProcessed,
    TransportError,
)
from ..._models import Headers, Request, Response
from ..http2_base import AsyncHTTP2Base, StopSending
from .body import AsyncResponseBody, Release


class AsyncHTTP2Connection(AsyncHTTP2Base):
    """Multiplexes requests over one HTTP/2 connection.

    Requests beyond the server's MAX_CONCURRENT_STREAMS wait here for a free
    stream (bounded by the pool timeout) rather than opening more connections.
    """

    multiplexed = True

    def __init__(
        self,
        stream: AsyncStream,
        settings: H2Settings,
        on_close: Callable[[AsyncHTTP2Connection], None],
    ) -> None:
        super().__init__(stream, H2Protocol(client_side=True, settings=settings), settings)
        self._on_close: Callable[[AsyncHTTP2Connection], None] | None = on_close
        self.requests = 0

    @property
    def is_available(self) -> bool:
        """New requests may start here (no GOAWAY, no failure, not closed)."""
        return not self._closed and self._error is None and self._core.accepting_streams

    def is_stale(self) -> bool:
        return not self.is_available

    async def start(self, task_group: AsyncTaskGroup, timeout: StepLimits) -> None:
        """Send our preface and settings; start the reader in ``task_group``."""
        self._write_timeout = connection_limits(timeout).write
        with self._lock:
            self._core.start()
            self._queue_locked()
        await self._flush()
        task_group.start_soon(self._read_loop)

    async def handle_request(
        self,
        request: Request,
        timeout: StepLimits,
        release: Release,
    ) -> Response:
        """Send ``request`` on a new stream; return once the response head arrived."""
        self.requests += 1
        try:
            sid = await self._open_stream(request, timeout)
        except BaseException:
            release(self, self.is_available)
            raise
        try:
            # Our HEADERS, unless another task sent them already. If this fails, the
            # stream's own state says what happened to it (a response may even have
            # come in full before the peer closed): _wait_headers reports it.
            await self._flush_quietly()
            if request._content or request._stream is not None:
                await self._send_body(sid, request, timeout)
            stream = await self._wait_headers(sid, timeout.read)
        except BaseException as exc:
            refused = self._refused_error(sid, exc)
            await self.end_exchange(sid, False, release)
            if refused is not None:
                raise refused from exc
            raise
        assert stream.headers is not None
        try:
            status, fields = response_status(stream.headers)
        except RemoteProtocolError:
            await self._finish_stream(sid, ErrorCodes.PROTOCOL_ERROR)
            release(self, self.is_available)
            await self.close_if_retired()
            raise
        response = Response(
            status, headers=Headers.from_raw(fields), http_version="2", request=request
        )
        response._stream = AsyncResponseBody(self, sid, timeout, release, response)
        return response

    async def _open_stream(self, request: Request, timeout: StepLimits) -> int:
        url = request.url
        headers = request_headers(
            request.method, url.scheme, url.authority, url.target, request.headers.raw
        )
        if request._content is not None and "content-length" not in request.headers:
            headers.append((b"content-length", str(len(request._content)).encode()))
        end_stream = not request._content and request._stream is None
        deadline = None if timeout.pool is None else AsyncClock.now() + timeout.pool
        while True:
            waiter: AsyncEvent | None = None
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
            remaining = None if deadline is None else deadline - AsyncClock.now()
            if (remaining is not None and remaining <= 0) or not await waiter.wait(remaining):
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
            if stream is None:
                return None
            error = self._refusal_locked(stream)
        if error is None:
            return None
        return RequestNotProcessed(
            f"{error} ({exc})", error_code=error.error_code, last_stream_id=error.last_stream_id
        )

    async def _send_body(self, sid: int, request: Request, timeout: StepLimits) -> None:
        trailers = request.trailers.raw or None
        try:
            if request._content is not None:
                await self._send_data(sid, request._content, trailers is None, timeout.write)
                if trailers is not None:
                    await self._end_stream(sid, trailers)
                return
            async for chunk in request.aiter_bytes():
                await self._send_data(sid, chunk, False, timeout.write)
            await self._end_stream(sid, trailers)
        except StopSending:
            pass  # the server answered and reset with NO_ERROR: read its response

    # -- the body source (see body.AsyncBodySource); the key is the stream id.

    async def read_body_chunk(self, key: int, timeout: StepLimits) -> bytes | None:
        return await self._read_chunk(key, timeout.read)

    def body_trailers(self, key: int) -> Fields | None:
        with self._lock:
            return self._core.streams[key].trailers

    async def end_exchange(self, key: int, complete: bool, release: Release) -> None:
        """Release the stream: reset it unless both sides finished it."""
        await self._finish_stream(key, ErrorCodes.CANCEL)
        release(self, self.is_available)
        await self.close_if_retired()

    async def close_if_retired(self) -> None:
        """After GOAWAY the connection serves only its streams in flight: close it
        once the last one is done, rather than waiting for the server to."""
        if not self._closed and not self._core.accepting_streams and not self._core.streams:
            await self.aclose()

    def _on_failed(self) -> None:
        self._notify_pool()

    def _on_changes(self, changes: Changes) -> None:
        if not self._core.accepting_streams:
            self._notify_pool()  # GOAWAY: no new streams here
        goaway = changes.goaway
        if goaway is not None and goaway.error_code != ErrorCodes.NO_ERROR:
            # A GOAWAY with an error code ends the connection (RFC 9113 §5.4.1): the
            # peer will not finish even the streams at or below its last-stream-id, so
            # they end now (ConnectionTerminated; those above it are retried) rather
            # than waiting out their read timeout.
            self._fail(
                ConnectionTerminated(
                    f"the server ended the connection (GOAWAY"
                    f" {self._core.error_name(goaway.error_code)})",
                    error_code=goaway.error_code,
                    last_stream_id=goaway.last_stream_id,
                )
            )

    def _notify_pool(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close(self)

    async def aclose(self) -> None:
        """Say GOAWAY and close; streams still open fail with a typed error."""
        if self._closed:
            return
        self._closed = True
        self._notify_pool()
        await self._close_connection()
