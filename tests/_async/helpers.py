"""The test app and raw-connection helpers shared by the HTTP/1.1 tests.

Written with hyperpy's own names only (no event loop library), so that the
generated blocking tests use them with threads.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

import h11

from hyperpy import AsyncServer, Request, Response
from hyperpy._backends import AsyncClock, AsyncStream

IO_TIMEOUT = 5.0


def _query(request: Request) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(request.query).items()}


async def app(request: Request) -> Response:
    """Routes used by the tests; each one reports what the server saw or misbehaves."""
    path = request.path
    query = _query(request)
    if path == "/":
        return Response(200, text="ok")
    if path == "/inspect":
        body = await request.aread()
        return Response(
            200,
            json={
                "method": request.method,
                "target": request.target,
                "path": request.path,
                "query": request.query,
                "http_version": request.http_version,
                "headers": request.headers.multi_items(),
                "body": body.decode("latin-1"),
            },
        )
    if path == "/client":
        assert request.client is not None
        host, port = request.client
        return Response(200, json={"host": host, "port": port})
    if path == "/slow":
        await AsyncClock.sleep(float(query.get("delay", "1")))
        return Response(200, text="slow done")
    if path == "/error":
        raise RuntimeError("boom: the handler failed on purpose")
    if path == "/missing":
        return Response(404, text="nothing here\n")
    if path == "/stream":
        count = int(query.get("n", "10"))
        size = int(query.get("size", "1000"))
        return Response(
            200,
            content=_generate(count, size),
            headers={"content-type": "application/octet-stream"},
            trailers={"x-chunks": str(count)},
        )
    if path == "/stall":
        # One chunk, then silence for `delay` seconds, then the rest.
        return Response(200, content=_stall(float(query.get("delay", "1"))))
    if path == "/upload":
        chunks = 0
        total = 0
        digest = hashlib.sha256()
        async for chunk in request.aiter_bytes():
            chunks += 1
            total += len(chunk)
            digest.update(chunk)
        return Response(
            200,
            json={
                "chunks": chunks,
                "total": total,
                "sha256": digest.hexdigest(),
                "transfer-encoding": request.headers.get("transfer-encoding"),
            },
        )
    return Response(404, text="Not Found\n")


def pattern(index: int, size: int) -> bytes:
    """The bytes of chunk ``index`` of a /stream response (distinct per chunk)."""
    return bytes([65 + index % 26]) * size


async def _generate(count: int, size: int) -> AsyncIterator[bytes]:
    for index in range(count):
        await AsyncClock.checkpoint()
        yield pattern(index, size)


async def _stall(delay: float) -> AsyncIterator[bytes]:
    yield b"first chunk;"
    await AsyncClock.sleep(delay)
    yield b"late chunk"


async def byte_chunks(count: int, size: int) -> AsyncIterator[bytes]:
    """An async iterable request body of ``count`` chunks of ``size`` bytes."""
    for index in range(count):
        yield pattern(index, size)


@asynccontextmanager
async def raw_connection(server: AsyncServer) -> AsyncIterator[AsyncStream]:
    """A plain connection to ``server`` over its network, for hand-written requests."""
    assert server.address is not None
    stream = await server.network.connect_tcp(*server.address, IO_TIMEOUT)
    try:
        yield stream
    finally:
        await stream.aclose()


async def read_until_eof(stream: AsyncStream, limit: float = IO_TIMEOUT) -> bytes:
    """Everything the server sends until it closes; fails if it does not close in time
    (ReadTimeout) or resets the connection (ReadError)."""
    data = b""
    deadline = AsyncClock.now() + limit
    while True:
        left = deadline - AsyncClock.now()
        assert left > 0, f"the server did not close the connection; got {data!r}"
        chunk = await stream.receive(65536, left)
        if not chunk:
            return data
        data += chunk
        assert len(data) < 1 << 24, "unbounded response"


async def read_head(stream: AsyncStream, buffer: bytearray) -> bytes:
    """Read one response head (through the blank line) into ``buffer`` and pop it."""
    for _ in range(1000):
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buffer[: end + 4])
            del buffer[: end + 4]
            return head
        chunk = await stream.receive(65536, IO_TIMEOUT)
        assert chunk, f"the server closed before a full head; got {bytes(buffer)!r}"
        buffer += chunk
    raise AssertionError("no response head")


class RawResponse:
    """A response parsed off a raw connection."""

    def __init__(self, head: h11.Response, body: bytes) -> None:
        self.status = head.status_code
        self.reason = head.reason.decode("latin-1")
        self.http_version = head.http_version.decode("ascii")
        self.headers = {name.decode(): value.decode() for name, value in head.headers}
        self.body = body


async def read_responses(
    stream: AsyncStream, methods: list[bytes], parser: h11.Connection | None = None
) -> list[RawResponse]:
    """Parse one response per entry of ``methods`` (the requests already sent, in order).

    h11 plays the client: for each response it is told the request that was sent
    (a shadow copy, never transmitted) so that it knows e.g. that a HEAD answer
    has no body. Parsing stops early if the server says it closes.
    """
    conn = parser or h11.Connection(h11.CLIENT)
    responses: list[RawResponse] = []
    for method in methods:
        conn.send(h11.Request(method=method, target="/", headers=[("host", "shadow")]))
        conn.send(h11.EndOfMessage())
        head: h11.Response | None = None
        body = b""
        for _ in range(100_000):
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive(65536, IO_TIMEOUT))
            elif type(event) is h11.Response:
                head = event
            elif type(event) is h11.Data:
                body += event.data
            elif type(event) is h11.EndOfMessage:
                break
            elif type(event) is h11.InformationalResponse:
                continue
            else:
                raise AssertionError(f"unexpected {event!r} after {len(responses)} responses")
        assert head is not None
        responses.append(RawResponse(head, body))
        if conn.their_state is not h11.DONE or conn.our_state is not h11.DONE:
            break
        conn.start_next_cycle()
    return responses
