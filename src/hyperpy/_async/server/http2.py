"""The server side of one HTTP/2 connection: a handler per stream, run concurrently."""

from __future__ import annotations

import logging
import time

from ..._backends import (
    AsyncCancelScope,
    AsyncClock,
    AsyncEvent,
    AsyncShield,
    AsyncStream,
    AsyncTaskGroup,
)
from ..._core import access_log
from ..._core.h2 import Changes, ErrorCodes, H2Protocol, StreamState
from ..._core.h2_heads import request_head, response_headers
from ..._exceptions import InvalidURL, TransportError
from ..._models import URL, Headers, Request, Response
from ..http2_base import AsyncHTTP2Base, StopSending
from .context import AsyncServerContext, H2CUpgrade

logger = logging.getLogger("hyperpy.server")

# After our final GOAWAY, how long we keep reading (so the peer's last frames do
# not turn into a TCP reset that could destroy our last response bytes).
_LINGER = 2.0
# After an h2c upgrade, how long the answer on stream 1 waits for the client's preface.
_PREFACE_WAIT = 2.0


class AsyncServerHTTP2Connection(AsyncHTTP2Base):
    """Serves every stream of one HTTP/2 connection with the server's handler."""

    def __init__(
        self,
        context: AsyncServerContext,
        stream: AsyncStream,
        initial: bytes,
        upgrade: H2CUpgrade | None = None,
    ) -> None:
        settings = context.h2_settings
        super().__init__(stream, H2Protocol(client_side=False, settings=settings), settings)
        self._context = context
        self._initial = initial
        self._upgrade = upgrade
        self._scheme = "https" if stream.is_tls else "http"
        self._client = stream.peername
        self._handlers: AsyncTaskGroup | None = None
        self._scopes: dict[int, AsyncCancelScope] = {}  # each running handler's
        self._finishing = False  # final GOAWAY sent: only lingering now
        self._started = False  # our SETTINGS are queued (a GOAWAY may follow them)
        self._shutdown_asked = False  # begin_shutdown came before run
        self._write_timeout = context.limits.write_timeout
        # After an h2c upgrade: set once the client's first frames are in.
        self._preface = AsyncEvent() if upgrade is not None else None

    def begin_shutdown(self) -> None:
        """Graceful shutdown: GOAWAY now; streams in flight finish; then close."""
        with self._lock:
            if not self._started:
                # Our SETTINGS must be the first frame: ``run`` says GOAWAY after it.
                self._shutdown_asked = True
                return
            self._queue_goaway_locked()
        self._context.spawn_task(self._shutdown_step)

    def _queue_goaway_locked(self) -> None:
        if self._core.goaway_sent is None and self._error is None:
            goaway = self._core.send_goaway()
            self._outbox.append(goaway)
            self._outbox_bytes += len(goaway)

    async def _shutdown_step(self) -> None:
        try:
            await self._flush()
        except TransportError:
            return
        await self._close_if_done()

    async def abort(self) -> None:
        self._fail(TransportError("the server closed the connection"))
        if self._handlers is not None:
            self._handlers.cancel()
        await self._stream.aclose()

    async def run(self) -> None:
        """Serve every stream until the connection ends."""
        with self._lock:
            if self._upgrade is not None:
                self._core.start_upgraded(self._upgrade.settings)
                # Stream 1 is the HTTP/1.1 request that asked for the upgrade: known
                # from the start, so a shutdown now still waits for its answer.
                self._core.streams[1] = StreamState(1, headers=[], ended=True)
                self._waiters(1)
            else:
                self._core.start()
            self._queue_locked()
            self._started = True
            if self._shutdown_asked:
                self._queue_goaway_locked()
        await self._flush()
        async with AsyncTaskGroup() as handlers:
            self._handlers = handlers
            if self._upgrade is not None:
                handlers.start_soon(self._handle_stream, 1, self._upgrade.request)
            if self._shutdown_asked:
                handlers.start_soon(self._shutdown_step)
            try:
                await self._read_loop(self._initial)
            finally:
                # The peer is gone (or the connection failed): handlers still running
                # cannot answer anyone.
                handlers.cancel()

    def _on_idle(self) -> None:
        self._context.connection_idle(self._stream)

    def _idle_timeout(self) -> float | None:
        if self._finishing:
            return _LINGER
        keep_alive = self._context.limits.keep_alive_timeout
        if keep_alive is None or self._core.streams:
            return keep_alive  # while streams are busy: wake now and then, to re-check
        return max(0.0, keep_alive - (AsyncClock.now() - self._idle_since))

    def _idle_expired(self) -> bool:
        """Idle means no stream for the keep-alive timeout; lingering ends at once."""
        if self._finishing:
            return True
        keep_alive = self._context.limits.keep_alive_timeout
        return (
            keep_alive is not None
            and not self._core.streams
            and AsyncClock.now() - self._idle_since >= keep_alive - 0.001
        )

    async def _on_idle_timeout(self) -> None:
        if self._finishing:
            return
        with self._lock:
            self._core.close(ErrorCodes.NO_ERROR)
            self._queue_locked()
        with AsyncShield(1.0):
            await self._flush_quietly()

    def _on_changes(self, changes: Changes) -> None:
        assert self._handlers is not None
        if self._preface is not None:
            self._preface.set()
        for sid in changes.reset:
            # The client gave up on it: its handler's work is wasted (and a rapid
            # reset attack counts on it running on), so stop it at once.
            scope = self._scopes.get(sid)
            if scope is not None:
                scope.cancel()
        if changes.new_streams:
            self._context.connection_busy(self._stream)
        for sid in changes.new_streams:
            self._handlers.start_soon(self._handle_stream, sid, None)
        if changes.goaway is not None and not self._core.streams:
            self._finishing = True

    async def _handle_stream(self, sid: int, upgraded: Request | None) -> None:
        """Serve stream ``sid``; whatever happens, only this stream ends with it."""
        scope = AsyncCancelScope()
        self._scopes[sid] = scope
        try:
            with scope:
                await self._serve_stream(sid, upgraded)
        except Exception:
            # A bug of ours: it must not take down the handlers' task group and every
            # stream beside this one.
            logger.exception("serving HTTP/2 stream %d failed", sid)
        finally:
            self._scopes.pop(sid, None)
            await self._finish_stream(sid, ErrorCodes.INTERNAL_ERROR)
            await self._close_if_done()

    async def _serve_stream(self, sid: int, upgraded: Request | None) -> None:
        request = upgraded if upgraded is not None else self._build_request(sid)
        if request is None:
            await self._finish_stream(sid, ErrorCodes.PROTOCOL_ERROR)
            return
        if upgraded is not None and self._preface is not None:
            request._stream = None  # its body (none) came over HTTP/1.1
        else:
            request._stream = AsyncHTTP2RequestBody(self, sid, request)
        logged = self._context.access_log and access_log.enabled()
        if logged:
            started, wall = AsyncClock.now(), time.time()
        try:
            response = await self._context.call_app(request)
        except TransportError as exc:
            # The handler's read of this stream failed (the client reset it, or its
            # body timed out): this stream ends, and only it.
            logger.debug("stream %d ended while its handler ran: %s", sid, exc)
            await self._finish_stream(sid, ErrorCodes.INTERNAL_ERROR)
            return
        if response is None:
            await self._finish_stream(sid, ErrorCodes.INTERNAL_ERROR)
            return
        if upgraded is not None and self._preface is not None:
            # The answer to the upgrading request waits (briefly) for the client's
            # preface: until then the client may still be reading the 101, with room
            # for little after it (curl 7.88 fails past 32 KiB); after it, it has
            # switched to HTTP/2.
            await self._preface.wait(_PREFACE_WAIT)
        try:
            sent = await self._send_response(sid, response, request.method == "HEAD")
        except StopSending:
            sent = -1
        except TransportError as exc:
            logger.debug("stream %d ended early: %s", sid, exc)
            await self._finish_stream(sid, ErrorCodes.INTERNAL_ERROR)
            return
        except Exception:
            logger.exception("error while streaming the response to %s", request.url)
            await self._finish_stream(sid, ErrorCodes.INTERNAL_ERROR)
            return
        if logged:
            access_log.log_request(
                request, response.status, max(sent, 0), wall, AsyncClock.now() - started
            )
        # Answered before reading the whole request body: RST_STREAM(NO_ERROR)
        # tells the client to stop sending it (RFC 9113 §8.1).
        await self._finish_stream(sid, ErrorCodes.NO_ERROR)

    def _build_request(self, sid: int) -> Request | None:
        """The request stream ``sid`` carries; None if it is malformed."""
        with self._lock:
            stream = self._core.streams.get(sid)
            headers = stream.headers if stream is not None else None
        head = request_head(headers) if headers is not None else None
        if head is None:
            return None
        scheme = head.scheme or self._scheme
        host = head.authority or "{}:{}".format(*self._stream.sockname)
        try:
            url = URL(f"{scheme}://{host}{head.path}")
        except InvalidURL:
            return None
        return Request(
            head.method,
            url,
            headers=Headers.from_raw(head.headers),
            http_version="2",
            client=self._client,
        )

    async def _send_response(self, sid: int, response: Response, is_head: bool) -> int:
        """Send ``response`` on ``sid``; return how many body bytes went out."""
        content = response._content
        if content is None and response._stream is None:
            content = b""
        trailers = response.trailers.raw or None
        length = len(content) if content is not None else None
        headers = response_headers(response.status, response.headers.raw, length)
        end = is_head or (content is not None and not content and trailers is None)
        try:
            with self._lock:
                self._check_send_locked(sid)
                self._core.send_headers(sid, headers, end_stream=end)
                self._queue_locked()
            await self._flush()
        except BaseException:
            await response.aclose()  # the stream is gone: release the body's resources
            raise
        if end:
            await response.aclose()
            return 0
        timeout = self._context.limits.write_timeout
        sent = 0
        try:
            if content is not None:
                await self._send_data(sid, content, trailers is None, timeout)
                sent = len(content)
            else:
                async for chunk in response.aiter_bytes():
                    await self._send_data(sid, chunk, False, timeout)
                    sent += len(chunk)
                trailers = response.trailers.raw or None  # a streaming body may set them late
                await self._end_stream(sid, trailers)
                return sent
        finally:
            await response.aclose()
        if trailers is not None:
            await self._end_stream(sid, trailers)
        return sent

    async def _send_continue(self, sid: int) -> None:
        """Answer ``Expect: 100-continue`` as the handler starts reading the body: a
        client that waits for it (curl does, for 1 s) then sends the body at once."""
        with self._lock:
            if self._error is not None or not self._core.send_continue(sid):
                return
            self._queue_locked()
        await self._flush_quietly()

    async def _close_if_done(self) -> None:
        """After our GOAWAY, once no stream is left: final GOAWAY, then half-close
        once every byte is out (the writer says when: see ``_flush``)."""
        with self._lock:
            if self._core.goaway_sent is None or self._core.streams or self._finishing:
                return
            self._finishing = True
            if self._error is None:
                self._core.close(ErrorCodes.NO_ERROR)
                self._queue_locked()
            self._eof_wanted = True
        with AsyncShield(2.0):
            await self._flush_quietly()


class AsyncHTTP2RequestBody:
    """A request body read from one stream; credit returns to the client as it is read."""

    def __init__(self, conn: AsyncServerHTTP2Connection, sid: int, request: Request) -> None:
        self._conn = conn
        self._sid = sid
        self._request = request
        self._done = False
        self._expects_continue = request.headers.get("expect", "").lower() == "100-continue"

    def __aiter__(self) -> AsyncHTTP2RequestBody:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        conn = self._conn
        if self._expects_continue:
            self._expects_continue = False
            await conn._send_continue(self._sid)
        data = await conn._read_chunk(self._sid, conn._context.limits.body_read_timeout)
        if data is not None:
            return data
        self._done = True
        with conn._lock:
            stream = conn._core.streams.get(self._sid)
            trailers = stream.trailers if stream is not None else None
        if trailers:
            self._request.trailers = Headers.from_raw(trailers)
        raise StopAsyncIteration
