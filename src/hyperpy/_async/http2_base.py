"""What HTTP/2 client and server connections share: one reader, ordered writes,
flow-controlled sending and credit-returning reading, and failure fan-out.

Concurrency rules (in the blocking world, each task is a thread):
- every ``H2Protocol`` call happens under ``self._lock`` (a real lock only in
  the sync world), and the bytes it produced are moved to ``self._outbox`` in
  the same locked block, so their order is the order of the state changes;
- ``_flush`` sends the outbox under the write lock; a task that finds the
  write lock taken leaves its bytes to the holder, which re-checks the outbox
  after releasing it, so nothing is stranded and the reader never blocks on a
  slow writer; the reader, when it is the holder, hands the rest back to the
  producers as soon as input waits (see ``_flush``);
- only the reader task feeds received bytes to h2.
"""

from __future__ import annotations

import logging

from .._backends import (
    AsyncClock,
    AsyncEvent,
    AsyncLock,
    AsyncShield,
    AsyncStateLock,
    AsyncStream,
)
from .._config import H2Settings
from .._core.h2 import Changes, ErrorCodes, H2Protocol, StreamState
from .._exceptions import (
    ConnectionTerminated,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    RequestNotProcessed,
    StreamReset,
    TransportError,
    WriteError,
    WriteTimeout,
)
from .waitlist import AsyncWaitList

logger = logging.getLogger("hyperpy.http2")

# How long a shielded frame write may take when no write timeout bounds it.
_SHIELD_BACKSTOP = 60.0


class StopSending(Exception):
    """The peer answered completely and asked us to stop sending (RST_STREAM NO_ERROR)."""


class AsyncHTTP2Base:
    """One HTTP/2 connection's shared machinery; subclasses add the client or server role."""

    def __init__(self, stream: AsyncStream, core: H2Protocol, settings: H2Settings) -> None:
        self._stream = stream
        self._core = core
        self._settings = settings
        self._lock = AsyncStateLock()
        self._write_lock = AsyncLock()
        self._outbox: list[bytes] = []
        self._outbox_bytes = 0
        self._write_timeout: float | None = None
        self._conn_waiters = AsyncWaitList()  # send windows, stream slots, outbox room
        self._stream_waiters: dict[int, AsyncWaitList] = {}
        self._error: TransportError | None = None
        self._closed = False
        self._eof_wanted = False  # half-close once everything queued is sent
        self._eof_sent = False
        self._idle_since = AsyncClock.now()  # when the last stream ended

    @property
    def stream(self) -> AsyncStream:
        return self._stream

    # -- writing --------------------------------------------------------------

    def _queue_locked(self) -> None:
        data = self._core.data_to_send()
        if data:
            self._outbox.append(data)
            self._outbox_bytes += len(data)

    def _write_pending(self) -> bool:
        return bool(self._outbox) or (self._eof_wanted and not self._eof_sent)

    async def _flush(self, *, reader: bool = False) -> None:
        """Send everything queued, unless another task is already doing so; then,
        if a half-close is wanted, do it.

        Only the writer declares the connection drained: the half-close happens
        here, under the write lock, with the outbox empty, so it can never overtake
        bytes another task is still sending.

        The ``reader`` stops writing as soon as input waits: while producers keep
        refilling the outbox it would otherwise write forever, and never read the
        peer's RST_STREAM that should stop them. The producers, woken, send the
        rest themselves (see ``_send_data``).
        """
        while self._write_pending():
            if not self._write_lock.try_acquire():
                return  # the holder sends our bytes before it lets go
            yielded = False
            try:
                while self._outbox:
                    with self._lock:
                        data = b"".join(self._outbox)
                        self._outbox.clear()
                        self._outbox_bytes = 0
                        self._conn_waiters.wake_all()
                    await self._send_shielded(data)
                    if reader and self._outbox and self._stream.is_readable():
                        yielded = True
                        break
                if yielded:
                    with self._lock:
                        self._conn_waiters.wake_all()  # the rest: for its producers
                    return
                with self._lock:
                    drained = self._eof_wanted and not self._eof_sent and not self._outbox
                    if drained:
                        self._eof_sent = True
                if drained:
                    self._stream.send_eof()
            except TransportError as exc:
                self._fail(exc)
                if isinstance(exc, WriteTimeout):
                    # Part of a frame may be on the wire: nothing may follow it.
                    with AsyncShield(1.0):
                        await self._stream.aclose()
                raise
            except BaseException:
                # Interrupted mid-write: part of ``data`` may be on the wire, so the next
                # frame would land inside a half-sent one (a DATA frame's payload, say)
                # and corrupt what the peer reads. The connection cannot go on: fail
                # every stream with a typed error and close it, which ends the reader.
                self._fail(WriteError("a write on the connection was interrupted midway"))
                with AsyncShield(1.0):
                    await self._stream.aclose()
                raise
            finally:
                self._write_lock.release()

    async def _send_shielded(self, data: bytes) -> None:
        """Send ``data`` whole, or fail the connection.

        The task that holds the write lock sends other streams' frames too, so its
        caller's cancellation must not cut a write short: that would leave a half
        frame on the wire and kill every stream on the connection. The write is
        shielded, bounded by the write timeout; a caller cancelled meanwhile sees
        its cancellation at its next wait, with the connection intact.
        """
        timeout = self._write_timeout
        shield = AsyncShield(_SHIELD_BACKSTOP if timeout is None else timeout + 1.0)
        done = False
        with shield:
            await self._stream.send_all(data, timeout)
            done = True
        if not done:
            raise WriteTimeout("a write on the connection made no progress in time")

    async def _flush_quietly(self) -> None:
        """Flush for the connection's sake (credit, or frames other tasks queued).

        A failure is recorded by ``_fail`` and reaches every stream through its own
        state (``_stream_error_locked``): a stream whose response fully arrived
        before the peer closed must not fail because this write did.
        """
        try:
            await self._flush()
        except TransportError:
            pass

    async def _send_data(
        self, sid: int, data: bytes, end_stream: bool, timeout: float | None
    ) -> None:
        """Send ``data`` on ``sid`` as the peer's windows allow; waits for credit.

        Raises WriteTimeout if no credit came within ``timeout``, StopSending if
        the peer no longer wants the rest, or the stream's or connection's error.
        """
        view = memoryview(data)
        max_buffer = self._settings.max_send_buffer
        while True:
            waiter: AsyncEvent | None = None
            with self._lock:
                self._check_send_locked(sid)
                window = self._core.send_window(sid)
                full = self._outbox_bytes >= max_buffer
                if full or (view and window <= 0):
                    waiter = self._conn_waiters.register()
                else:
                    size = min(window, len(view))
                    last = end_stream and size == len(view)
                    if size or last:
                        self._core.send_data(sid, bytes(view[:size]), end_stream=last)
                    view = view[size:]
                    self._queue_locked()
            if waiter is None:
                await self._flush()
                if not view:
                    return
                continue
            if full:
                # Room comes when the outbox is sent: by us, if nobody is sending.
                # (Registered first, so a writer that takes it meanwhile wakes us.)
                await self._flush()
            if not await waiter.wait(timeout):
                with self._lock:
                    self._conn_waiters.discard(waiter)
                raise WriteTimeout(f"the peer gave no flow-control credit within {timeout} s")

    def _check_send_locked(self, sid: int) -> None:
        stream = self._core.streams.get(sid)
        if stream is None:
            raise StopSending
        # A stream a GOAWAY refused stops sending at once: the peer discards the rest.
        if stream.reset_code is not None or stream.refused:
            if stream.reset_code == ErrorCodes.NO_ERROR and (
                stream.ended or stream.headers is not None
            ):
                raise StopSending
            error = self._stream_error_locked(stream)
            assert error is not None
            raise error
        if self._error is not None:
            raise self._error

    async def _end_stream(
        self, sid: int, trailers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        with self._lock:
            self._check_send_locked(sid)
            self._core.end_stream(sid, trailers)
            self._queue_locked()
        await self._flush()

    # -- reading --------------------------------------------------------------

    async def _read_chunk(self, sid: int, timeout: float | None) -> bytes | None:
        """The next chunk of ``sid``'s body, or None at its end."""
        while True:
            with self._lock:
                stream = self._core.streams[sid]
                data = self._core.read(sid)
                if data is None:
                    if stream.ended:
                        return None
                    error = self._stream_error_locked(stream)
                    if error is not None:
                        raise error
                    waiter = self._waiters(sid).register()
                else:
                    self._queue_locked()
            if data is not None:
                if self._outbox:
                    await self._flush_quietly()  # a WINDOW_UPDATE the read made due
                return data
            if not await waiter.wait(timeout):
                self._forget_waiter(sid, waiter)
                raise ReadTimeout(f"no data on stream {sid} within {timeout} s")

    async def _wait_headers(self, sid: int, timeout: float | None) -> StreamState:
        while True:
            with self._lock:
                stream = self._core.streams[sid]
                if stream.headers is not None:
                    return stream
                error = self._stream_error_locked(stream)
                if error is not None:
                    raise error
                waiter = self._waiters(sid).register()
            if not await waiter.wait(timeout):
                self._forget_waiter(sid, waiter)
                raise ReadTimeout(f"no response on stream {sid} within {timeout} s")

    def _forget_waiter(self, sid: int, waiter: AsyncEvent) -> None:
        with self._lock:
            waiters = self._stream_waiters.get(sid)
            if waiters is not None:
                waiters.discard(waiter)

    def _waiters(self, sid: int) -> AsyncWaitList:
        waiters = self._stream_waiters.get(sid)
        if waiters is None:
            waiters = self._stream_waiters[sid] = AsyncWaitList()
        return waiters

    def _stream_error_locked(self, stream: StreamState) -> TransportError | None:
        """Why ``stream`` cannot go on, or None if it can."""
        core = self._core
        refusal = self._refusal_locked(stream)
        if refusal is not None:
            return refusal
        if stream.reset_code is not None:
            return StreamReset(
                core.reset_error(stream), error_code=stream.reset_code, remote=stream.reset_remote
            )
        if self._error is not None:
            goaway = core.goaway_received
            if goaway is not None and stream.stream_id <= goaway.last_stream_id:
                return ConnectionTerminated(
                    f"the connection ended (GOAWAY {core.error_name(goaway.error_code)}) "
                    f"before stream {stream.stream_id} finished",
                    error_code=goaway.error_code,
                    last_stream_id=goaway.last_stream_id,
                )
            return self._error
        return None

    def _refusal_locked(self, stream: StreamState) -> RequestNotProcessed | None:
        """Why the peer proved it never processed ``stream``, if it did: a GOAWAY
        whose last-stream-id is below it, or RST_STREAM(REFUSED_STREAM)."""
        if stream.reset_code == ErrorCodes.REFUSED_STREAM:
            return RequestNotProcessed(
                f"stream {stream.stream_id} was refused by the peer (REFUSED_STREAM)",
                error_code=ErrorCodes.REFUSED_STREAM,
                last_stream_id=0,
            )
        goaway = self._core.goaway_received
        if stream.refused and goaway is not None:
            return RequestNotProcessed(
                f"stream {stream.stream_id} was refused by the peer (GOAWAY"
                f" {self._core.error_name(goaway.error_code)}, last stream"
                f" {goaway.last_stream_id})",
                error_code=goaway.error_code,
                last_stream_id=goaway.last_stream_id,
            )
        return None

    # -- the reader -------------------------------------------------------------

    async def _read_loop(self, initial: bytes = b"") -> None:
        """Feed every received byte (``initial`` first: read before the connection
        knew it was HTTP/2) to h2, and wake whoever the news is for."""
        error: TransportError = ReadError("the connection was closed by the peer")
        say_why = False  # a GOAWAY explaining our close is queued
        try:
            data = initial or await self._receive()
            while data:
                with self._lock:
                    try:
                        changes = self._core.receive(data, AsyncClock.now())
                    except RemoteProtocolError:
                        say_why = True
                        raise
                    finally:
                        self._queue_locked()  # our acks, or the GOAWAY of a protocol error
                    self._dispatch_locked(changes)
                    # DATA never fills the outbox past max_send_buffer (writers wait);
                    # beyond a few times that, it is our replies to a peer that sends
                    # frames (PING, SETTINGS, resets) but does not read its socket.
                    if self._outbox_bytes > 4 * self._settings.max_send_buffer:
                        self._outbox.clear()  # it cannot be delivered: do not try
                        self._outbox_bytes = 0
                        raise RemoteProtocolError(
                            "the peer keeps sending but does not read our replies"
                        )
                self._on_changes(changes)
                await self._flush(reader=True)
                data = await self._receive()
        except ReadTimeout as exc:
            error = exc
            await self._on_idle_timeout()
        except Exception as exc:
            if not isinstance(exc, TransportError):
                # A bug must not take down the task group this reader runs in (the
                # client's, or the server's): fail this connection's streams instead.
                logger.exception("HTTP/2 connection reader failed")
                exc = RemoteProtocolError(f"internal error on the connection: {exc!r}")
            error = exc
        finally:
            self._fail(error)
            with AsyncShield(2.0):
                if say_why:
                    # Tell the peer why, and linger: closing with its frames unread
                    # would make TCP reset the connection and destroy our GOAWAY.
                    await self._flush_quietly()
                    await self._stream.close_lingering(1.0)
                await self._stream.aclose()

    async def _receive(self) -> bytes:
        """The peer's next bytes. A read timeout ends the connection only once the
        role says it has been idle long enough (``_idle_expired``): the timeout of a
        read that began while streams were busy is checked again when it fires."""
        while True:
            try:
                return await self._stream.receive(65536, self._idle_timeout())
            except ReadTimeout:
                if self._idle_expired():
                    raise

    def _dispatch_locked(self, changes: Changes) -> None:
        for sid in changes.streams:
            waiters = self._stream_waiters.get(sid)
            if waiters is not None:
                waiters.wake_all()
        if changes.window or changes.goaway is not None:
            self._conn_waiters.wake_all()

    def _fail(self, error: TransportError) -> None:
        """The connection is unusable: every waiter wakes to find out why."""
        with self._lock:
            if self._error is None:
                self._error = error
                if self._core.failure_reason is None:
                    self._core.failure_reason = str(error)
            self._conn_waiters.wake_all()
            for waiters in self._stream_waiters.values():
                waiters.wake_all()
        self._on_failed()

    async def _finish_stream(self, sid: int, code: int = ErrorCodes.CANCEL) -> None:
        """The caller is done with ``sid``: reset it if it is still open, drop its state.

        The bookkeeping happens at once (it cannot be cut short); only the
        flush of the RST_STREAM may be, and it is shielded briefly.
        """
        with self._lock:
            if not self._core.stream_done(sid) and self._error is None:
                self._core.reset(sid, code)
            self._core.forget(sid)
            self._stream_waiters.pop(sid, None)
            self._queue_locked()
            self._conn_waiters.wake_all()  # a stream slot is free
            idle = not self._core.streams
            if idle:
                self._idle_since = AsyncClock.now()
        if idle:
            self._on_idle()
        if self._outbox and self._error is None:
            with AsyncShield(1.0):
                await self._flush_quietly()

    async def _close_connection(self) -> None:
        """Final GOAWAY (unless the connection already failed), flush it, close."""
        with self._lock:
            if self._error is None:
                self._core.close()
                self._queue_locked()
        with AsyncShield(1.0):
            await self._flush_quietly()
            await self._stream.aclose()

    # -- role hooks -------------------------------------------------------------

    def _idle_timeout(self) -> float | None:
        """How long the reader waits for the peer's next bytes (None: forever)."""
        return None

    def _idle_expired(self) -> bool:
        """After a read timeout: whether the connection is idle for long enough to end."""
        return True

    async def _on_idle_timeout(self) -> None:
        pass

    def _on_changes(self, changes: Changes) -> None:
        pass

    def _on_idle(self) -> None:
        """The last stream in flight is done."""

    def _on_failed(self) -> None:
        pass
