"""A client HTTP/1.1 connection: one exchange at a time over one stream."""

from __future__ import annotations

from ..._backends import AsyncShield, AsyncStream
from ..._config import Timeout
from ..._core.h1 import (
    CLOSED,
    NEED_DATA,
    Data,
    EndOfMessage,
    Fields,
    H1Client,
    ResponseHead,
    body_framing,
)
from ..._exceptions import ReadError, RemoteProtocolError, RequestNotProcessed, WriteError
from ..._models import Headers, Request, Response
from .body import AsyncResponseBody, Release


class AsyncHTTP11Connection:
    """Sends requests and reads responses over one HTTP/1.1 connection."""

    multiplexed = False

    def __init__(self, stream: AsyncStream) -> None:
        self._stream = stream
        self._h1 = H1Client()
        self._closed = False
        self._trailers: Fields | None = None
        self.requests = 0  # exchanges started here; >0 means the connection was reused

    @property
    def is_closed(self) -> bool:
        return self._closed

    def is_stale(self) -> bool:
        """An idle connection with readable bytes or EOF was closed (or broken) by the
        server: bytes on an idle connection are never the answer to the next request."""
        return self._closed or self._stream.is_readable()

    async def handle_request(
        self, request: Request, timeout: Timeout, release: Release
    ) -> Response:
        """Send ``request`` and return the response once its head has arrived.

        The body streams from the connection; ``release`` is called exactly once,
        when the body is finished or abandoned, saying whether the connection can
        be reused.
        """
        reused = self.requests > 0
        self.requests += 1
        try:
            try:
                await self._send_request(request, timeout)
            except WriteError:
                # The server may have answered early (e.g. 413) and stopped reading:
                # its response, if any, is what the caller should see.
                pass
            head = await self._receive_head(timeout, reused=reused)
        except BaseException:
            release(self, False)
            await self.aclose()
            raise
        response = Response(
            head.status,
            headers=Headers.from_raw(head.headers),
            reason=head.reason.decode("latin-1"),
            http_version=head.http_version.decode("ascii"),
            request=request,
        )
        body = AsyncResponseBody(self, 0, timeout.read, release, response)
        if request.method == "HEAD" or head.status in (204, 304):
            await body.skip()
        else:
            response._stream = body
        return response

    async def _send_request(self, request: Request, timeout: Timeout) -> None:
        h1 = self._h1
        method = request.method.encode("ascii")
        target = request.url.target.encode("ascii")
        headers = request.headers.raw
        send = self._stream.send_all
        if not request.is_streaming:
            content = request._content or b""
            length = len(content) if (content or request.method not in ("GET", "HEAD")) else None
            framed = body_framing(headers, length, allow_chunked=False)
            for buffer in h1.whole_request(method, target, framed, content):
                await send(buffer, timeout.write)
            return
        await send(h1.start_request(method, target, body_framing(headers, None)), timeout.write)
        async for chunk in request.aiter_bytes():
            for piece in h1.body(chunk):
                await send(piece, timeout.write)
        await send(h1.end_request(request.trailers.raw or None), timeout.write)

    async def _receive_head(self, timeout: Timeout, *, reused: bool) -> ResponseHead:
        h1 = self._h1
        got_bytes = False
        while True:
            event = h1.next_event()
            if event is NEED_DATA:
                try:
                    data = await self._receive(timeout.read)
                except ReadError as exc:
                    if reused and not got_bytes:
                        raise self._stale(exc) from exc
                    raise
                if not data and not got_bytes:
                    if reused:
                        raise self._stale(None)
                    raise RemoteProtocolError("the server closed the connection without a response")
                got_bytes = got_bytes or bool(data)
                h1.receive(data)
            elif type(event) is ResponseHead:
                if event.status >= 200:
                    return event
                # 100 Continue and friends: the final response follows
            elif event is CLOSED:
                raise RemoteProtocolError("the server closed the connection without a response")
            else:  # pragma: no cover - the parser yields nothing else here
                raise RemoteProtocolError(f"unexpected event {event!r}")

    @staticmethod
    def _stale(error: ReadError | None) -> RequestNotProcessed:
        # A kept-alive connection that ends (closed or reset) before any byte of the
        # answer: most likely the server closed it idle as our request went out.
        # Not proof that it did not process the request, hence ``certain=False``.
        how = "reset" if error is not None else "closed"
        return RequestNotProcessed(f"the server {how} the kept-alive connection", certain=False)

    async def _receive(self, timeout: float | None) -> bytes:
        try:
            return await self._stream.receive(65536, timeout)
        except ReadError:
            if self._h1.response_complete:
                return b""
            raise

    # -- the body source (see body.AsyncBodySource); one exchange at a time, so the
    # key is unused.

    async def read_body_chunk(self, key: int, timeout: float | None) -> bytes | None:
        h1 = self._h1
        while True:
            event = h1.next_event()
            if event is NEED_DATA:
                h1.receive(await self._receive(timeout))
            elif type(event) is Data:
                return event.data
            elif type(event) is EndOfMessage:
                self._trailers = event.trailers
                return None
            elif event is CLOSED:
                raise RemoteProtocolError("the server closed the connection mid-body")
            else:  # pragma: no cover
                raise RemoteProtocolError(f"unexpected event {event!r}")

    def body_trailers(self, key: int) -> Fields | None:
        trailers, self._trailers = self._trailers, None
        return trailers

    async def end_exchange(self, key: int, complete: bool, release: Release) -> None:
        # A body not read to its end leaves the connection mid-message: never reusable.
        reusable = complete and not self._closed and self._h1.try_reuse()
        to_close = release(self, reusable)  # bookkeeping first: it cannot be cut short
        if to_close:
            with AsyncShield(1.0):
                for conn in to_close:
                    await conn.aclose()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._stream.aclose()
