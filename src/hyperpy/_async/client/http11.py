"""A client HTTP/1.1 connection: one exchange at a time over one stream."""

from __future__ import annotations

from ..._backends import AsyncClock, AsyncShield, AsyncStream
from ..._core.deadline import StepLimits
from ..._core.engine import h1_client
from ..._core.h1 import (
    CLOSED,
    NEED_DATA,
    Data,
    EndOfMessage,
    Fields,
    ResponseHead,
    body_framing,
)
from ..._core.proxies import Proxy
from ..._exceptions import (
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    RequestNotProcessed,
    WriteError,
)
from ..._models import Headers, Request, Response
from .body import AsyncResponseBody, Release

# How long a request with ``Expect: 100-continue`` waits for the 100 before it sends
# its body anyway (curl waits 1 s too).
CONTINUE_WAIT = 1.0
# The most one read of a response body asks for (the head is read in 64 KiB).
BODY_READ_SIZE = 262144


def _expects_continue(request: Request) -> bool:
    if not request._content and request._stream is None:
        return False
    for name, value in request.headers.raw:
        if name == b"expect":
            return value.lower() == b"100-continue"
    return False


class AsyncHTTP11Connection:
    """Sends requests and reads responses over one HTTP/1.1 connection."""

    multiplexed = False

    def __init__(
        self, stream: AsyncStream, *, proxy: Proxy | None = None, engine: str = "h11"
    ) -> None:
        self._stream = stream
        # Through an HTTP forward proxy: absolute-form targets, and the proxy's headers.
        self._proxy_headers = None if proxy is None else proxy.request_fields()
        self._h1 = h1_client(engine)
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
        self, request: Request, timeout: StepLimits, release: Release
    ) -> Response:
        """Send ``request`` and return the response once its head has arrived.

        The body streams from the connection; ``release`` is called exactly once,
        when the body is finished or abandoned, saying whether the connection can
        be reused.
        """
        reused = self.requests > 0
        self.requests += 1
        try:
            early: ResponseHead | None = None
            try:
                early = await self._send_request(request, timeout)
            except WriteError:
                # The server may have answered early (e.g. 413) and stopped reading:
                # its response, if any, is what the caller should see.
                pass
            head = early or await self._receive_head(timeout, reused=reused)
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
        body = AsyncResponseBody(self, 0, timeout, release, response)
        if request.method == "HEAD" or head.status in (204, 304):
            await body.skip()
        else:
            response._stream = body
        return response

    async def _send_request(self, request: Request, timeout: StepLimits) -> ResponseHead | None:
        """Send the request; with ``Expect: 100-continue``, the final response if the
        server gave one instead of the 100 (the body is then not sent)."""
        h1 = self._h1
        method = request.method.encode("ascii")
        headers = request.headers.raw
        if self._proxy_headers is None:
            target = request.url.target.encode("ascii")
        else:
            target = str(request.url).encode("ascii")
            headers = headers + self._proxy_headers
        send = self._stream.send_all
        expects = _expects_continue(request)
        if not request.is_streaming:
            content = request._content or b""
            length = len(content) if (content or request.method not in ("GET", "HEAD")) else None
            framed = body_framing(headers, length, allow_chunked=False)
            if not expects:
                for buffer in h1.whole_request(method, target, framed, content):
                    await send(buffer, timeout.write)
                return None
        else:
            framed = body_framing(headers, None)
        await send(h1.start_request(method, target, framed), timeout.write)
        if expects:
            early = await self._await_continue(timeout)
            if early is not None:
                return early  # the connection is mid-request now: never reused
        async for chunk in request.aiter_bytes():
            for piece in h1.body(chunk):
                await send(piece, timeout.write)
        await send(h1.end_request(request.trailers.raw or None), timeout.write)
        return None

    async def _await_continue(self, timeout: StepLimits) -> ResponseHead | None:
        """Wait (at most ``CONTINUE_WAIT``) for the server's 100 Continue. Returns a
        final response that came instead; None to send the body: after the 100, or
        when the server stays silent (RFC 9110 §10.1.1: then send it anyway)."""
        h1 = self._h1
        read = timeout.read
        end = AsyncClock.now() + (CONTINUE_WAIT if read is None else min(CONTINUE_WAIT, read))
        while True:
            event = h1.next_event()
            if event is NEED_DATA:
                left = end - AsyncClock.now()
                if left <= 0:
                    return None
                try:
                    data = await self._stream.receive(65536, left)
                except (ReadTimeout, ReadError):
                    return None  # reading the head says what happened
                if not data:
                    return None
                h1.receive(data)
            elif type(event) is ResponseHead:
                if event.status == 100:
                    return None
                if event.status >= 200:
                    return event
            else:
                return None

    async def _receive_head(self, timeout: StepLimits, *, reused: bool) -> ResponseHead:
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

    async def _receive(self, timeout: float | None, size: int = 65536) -> bytes:
        try:
            return await self._stream.receive(size, timeout)
        except ReadError:
            if self._h1.response_complete:
                return b""
            raise

    # -- the body source (see body.AsyncBodySource); one exchange at a time, so the
    # key is unused.

    async def read_body_chunk(self, key: int, timeout: StepLimits) -> bytes | None:
        h1 = self._h1
        while True:
            event = h1.next_event()
            if event is NEED_DATA:
                # Bodies are read in larger pieces: a quarter of the syscalls and
                # loop turns for a large download, and no cost for a small one.
                h1.receive(await self._receive(timeout.read, BODY_READ_SIZE))
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
