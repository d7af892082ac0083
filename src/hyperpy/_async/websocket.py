"""A WebSocket over a byte stream, for both roles: what a handler gets from
``request.upgrade.accept_websocket()`` and a client from ``client.websocket(url)``.

The frames are ``_core.websocket``'s business; this module only moves bytes. One
task may receive while others send: sends are serialised by a lock, and the
pongs and close echo the protocol owes go out with the next write or read.
"""

from __future__ import annotations

from types import TracebackType

from .._backends import AsyncLock, AsyncShield, AsyncStream
from .._core.websocket import (
    ABNORMAL_CLOSURE,
    GOING_AWAY,
    INTERNAL_ERROR,
    NORMAL_CLOSURE,
    Closed,
    WebSocketProtocol,
)
from .._exceptions import TimeoutException, TransportError, WebSocketClosed

# How long ``close`` waits for the peer's close frame before it drops the connection.
CLOSE_TIMEOUT = 5.0


class AsyncWebSocket:
    """An open WebSocket: ``send``/``receive`` whole messages (``str`` for text,
    ``bytes`` for binary), ``ping``, ``close``.

    ``receive`` raises ``WebSocketClosed`` (with the code and reason) once the
    peer closed; iterating with ``async for`` ends quietly on a normal close
    (1000 or 1001) instead. Use it as a context manager, or call ``close``.
    """

    def __init__(
        self,
        stream: AsyncStream,
        protocol: WebSocketProtocol,
        *,
        subprotocol: str | None = None,
        write_timeout: float | None = 10.0,
    ) -> None:
        self._stream = stream
        self._protocol = protocol
        self._write_lock = AsyncLock()
        self._write_timeout = write_timeout
        self._pending: list[str | bytes | Closed] = []
        self._dead = False
        self.subprotocol = subprotocol

    @property
    def closed(self) -> Closed | None:
        """How the WebSocket closed (code, reason), or None while it is open."""
        return self._protocol.closed

    async def send(self, message: str | bytes) -> None:
        """Send a whole message: text for ``str``, binary for ``bytes``."""
        async with self._write_lock:
            self._protocol.send_message(message)
            await self._flush()

    async def send_text(self, text: str) -> None:
        await self.send(text)

    async def send_bytes(self, data: bytes) -> None:
        await self.send(bytes(data))

    async def ping(self, payload: bytes = b"") -> None:
        """Send a ping (the peer's pong is consumed quietly)."""
        async with self._write_lock:
            self._protocol.ping(payload)
            await self._flush()

    async def _flush(self) -> None:
        data = self._protocol.data_to_send()
        if data and not self._dead:
            try:
                await self._stream.send_all(data, self._write_timeout)
            except TransportError:
                self._dead = True
                raise

    async def receive(self, timeout: float | None = None) -> str | bytes:
        """The next whole message; ``WebSocketClosed`` once the peer has closed."""
        while True:
            if self._pending:
                item = self._pending.pop(0)
                if isinstance(item, Closed):
                    await self._finish_close(item)
                    raise WebSocketClosed(
                        f"the WebSocket was closed ({item.code}: {item.reason})",
                        code=item.code,
                        reason=item.reason,
                    )
                return item
            closed = self._protocol.closed
            if closed is not None:
                raise WebSocketClosed(
                    f"the WebSocket is closed ({closed.code}: {closed.reason})",
                    code=closed.code,
                    reason=closed.reason,
                )
            # Frames already read come first: the protocol stops after each message.
            items = self._protocol.receive_buffered()
            if not items:
                await self._flush_owed()  # pongs owed must not wait for the next read
                try:
                    data = await self._stream.receive(65536, timeout)
                except TimeoutException:
                    raise
                except TransportError:
                    data = b""  # reset: the same as an end without a close frame
                items = self._protocol.receive(data)
            self._pending += items
            await self._flush_owed()

    async def _flush_owed(self) -> None:
        """Send what the protocol owes the peer: pongs, the echo of a close."""
        if self._protocol.data_to_send_pending():
            async with self._write_lock:
                try:
                    await self._flush()
                except TransportError:
                    pass

    async def receive_text(self, timeout: float | None = None) -> str:
        message = await self.receive(timeout)
        if not isinstance(message, str):
            raise TypeError("expected a text message, got a binary one")
        return message

    async def receive_bytes(self, timeout: float | None = None) -> bytes:
        message = await self.receive(timeout)
        if not isinstance(message, bytes):
            raise TypeError("expected a binary message, got a text one")
        return message

    def __aiter__(self) -> AsyncWebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.receive()
        except WebSocketClosed as exc:
            if exc.code in (NORMAL_CLOSURE, GOING_AWAY):
                raise StopAsyncIteration from None
            raise

    async def _finish_close(self, closed: Closed) -> None:
        """The peer closed (its frame is echoed by now): end the connection."""
        if closed.code == ABNORMAL_CLOSURE or self._protocol.close_sent:
            with AsyncShield(1.0):
                await self._stream.aclose()

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Send a close frame, wait (briefly) for the peer's, and close the connection."""
        if self._protocol.closed is None:
            async with self._write_lock:
                self._protocol.close(code, reason)
                try:
                    await self._flush()
                except TransportError:
                    pass
            try:
                while self._protocol.closed is None and not self._dead:
                    # Messages still on their way are dropped: we are closing.
                    if not self._protocol.receive_buffered():
                        data = await self._stream.receive(65536, CLOSE_TIMEOUT)
                        self._protocol.receive(data)
            except (TimeoutException, TransportError):
                pass
        with AsyncShield(1.0):
            await self._stream.aclose()

    async def __aenter__(self) -> AsyncWebSocket:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An error in the block closes with 1011 (internal error), as servers do.
        await self.close(INTERNAL_ERROR if exc is not None else NORMAL_CLOSURE)
