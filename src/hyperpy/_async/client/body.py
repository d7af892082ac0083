"""A response body, read chunk by chunk from whichever connection carries it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..._core.deadline import StepLimits
from ..._core.decoders import Decoder
from ..._exceptions import DecodingError
from ..._models import Headers, Response

# Called once per exchange with (connection, reusable): the pool's bookkeeping, which
# cannot be interrupted, returns the connections that must now be closed.
Release = Callable[[Any, bool], list[Any]]


class AsyncBodySource(Protocol):
    """What a connection offers the body of one of its exchanges (``key``: which one)."""

    async def read_body_chunk(self, key: int, timeout: StepLimits) -> bytes | None:
        """The next chunk of the body, or None at its end."""
        ...

    def body_trailers(self, key: int) -> list[tuple[bytes, bytes]] | None:
        """The trailer fields that ended the body, if any."""
        ...

    async def end_exchange(self, key: int, complete: bool, release: Release) -> None:
        """The caller is done: ``complete`` if the body was read to its end. Releases
        the connection (or the stream), closing or resetting what cannot be reused."""
        ...


class AsyncResponseBody:
    """A response body streamed from its connection; ends its exchange exactly once."""

    __slots__ = ("_key", "_release", "_response", "_source", "_timeout")

    def __init__(
        self,
        source: AsyncBodySource,
        key: int,
        timeout: StepLimits,
        release: Release,
        response: Response,
    ) -> None:
        self._source = source
        self._key = key
        self._timeout = timeout
        self._release: Release | None = release
        self._response = response

    def __aiter__(self) -> AsyncResponseBody:
        return self

    async def __anext__(self) -> bytes:
        if self._release is None:
            raise StopAsyncIteration
        try:
            chunk = await self._source.read_body_chunk(self._key, self._timeout)
        except BaseException:
            await self.aclose()
            raise
        if chunk is not None:
            return chunk
        trailers = self._source.body_trailers(self._key)
        if trailers:
            self._response.trailers = Headers.from_raw(trailers)
        await self._end(complete=True)
        raise StopAsyncIteration

    async def skip(self) -> None:
        """Read the body to its end, keeping nothing (for a body the protocol says is
        empty: the answer to HEAD, a 204 or a 304)."""
        async for _ in self:
            pass

    async def _end(self, complete: bool) -> None:
        release, self._release = self._release, None
        if release is not None:
            await self._source.end_exchange(self._key, complete, release)

    async def aclose(self) -> None:
        """Release the connection; a body not read to its end is abandoned."""
        await self._end(complete=False)


class AsyncDecodedBody:
    """A response body decoded as its Content-Encoding says, chunk by chunk."""

    __slots__ = ("_decoder", "_done", "_raw")

    def __init__(self, raw: AsyncResponseBody, decoder: Decoder) -> None:
        self._raw = raw
        self._decoder = decoder
        self._done = False

    def __aiter__(self) -> AsyncDecodedBody:
        return self

    async def __anext__(self) -> bytes:
        while not self._done:
            try:
                chunk = await self._raw.__anext__()
            except StopAsyncIteration:
                self._done = True
                tail = self._decode(self._decoder.flush)
                if tail:
                    return tail
                break
            data = self._decode(self._decoder.decode, chunk)
            if data:
                return data
        raise StopAsyncIteration

    def _decode(self, step: Callable[..., bytes], *args: bytes) -> bytes:
        try:
            return step(*args)
        except DecodingError:
            self._done = True  # the caller closes the body, which releases the connection
            raise

    async def aclose(self) -> None:
        await self._raw.aclose()
