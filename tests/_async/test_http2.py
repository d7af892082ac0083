"""HTTP/2 end to end: multiplexing, flow control, resets, GOAWAY, trailers, shutdown.

The hyperpy client talks to the hyperpy server (h2c prior knowledge and TLS with
ALPN), and to ``h2peer``, a scripted raw h2 server that misbehaves on demand.
The h2c tests run on the in-process network, the TLS ones over loopback sockets.
"""

from __future__ import annotations

import hashlib
import random
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import h2.errors
import pytest

import hyperpy
from hyperpy import (
    AsyncClient,
    AsyncServer,
    ConnectError,
    H2Settings,
    Headers,
    Request,
    Response,
    Timeout,
    TransportError,
)
from hyperpy._async.client.http2 import AsyncHTTP2Connection
from hyperpy._async.server.http2 import AsyncServerHTTP2Connection
from hyperpy._backends import AsyncClock, AsyncEvent, AsyncTaskGroup
from hyperpy.testing import AsyncMemoryNetwork

from .h2peer import PeerConnection, h2_peer

NO_ERROR = h2.errors.ErrorCodes.NO_ERROR
INTERNAL_ERROR = h2.errors.ErrorCodes.INTERNAL_ERROR
REFUSED_STREAM = h2.errors.ErrorCodes.REFUSED_STREAM
CANCEL = h2.errors.ErrorCodes.CANCEL

MB = 1024 * 1024
# Deterministic, non-repeating bytes: a reordered, lost or duplicated chunk changes the hash.
BLOB = random.Random(2024).randbytes(10 * MB)
SMALL_WINDOWS = H2Settings(initial_window_size=65535, connection_window_size=65535)
CLIENT_TIMEOUT = Timeout(5)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _query(request: Request) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(request.query).items()}


async def _blob_chunks(size: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, size, chunk):
        yield BLOB[start : min(size, start + chunk)]


async def _slow_chunks(count: int, delay: float) -> AsyncIterator[bytes]:
    for index in range(count):
        yield b"chunk %d;" % index
        await AsyncClock.sleep(delay)


async def _failing_body() -> AsyncIterator[bytes]:
    yield b"a" * 20000
    await AsyncClock.sleep(0.05)
    yield b"b" * 20000
    raise RuntimeError("boom: the body failed midway on purpose")


async def _trailing_body() -> AsyncIterator[bytes]:
    for index in range(5):
        await AsyncClock.checkpoint()
        yield BLOB[index * 10000 : (index + 1) * 10000]


async def app(request: Request) -> Response:
    """The HTTP/2 test routes."""
    path = request.path
    query = _query(request)
    if path == "/":
        return Response(200, text="ok")
    if path == "/peer":
        assert request.client is not None
        return Response(200, json={"port": request.client[1], "http_version": request.http_version})
    if path == "/echo":
        body = await request.aread()
        return Response(200, content=body)
    if path == "/sha256":
        # Streams the upload, optionally slowly; reports what arrived and its trailers.
        delay = float(query.get("delay", "0"))
        digest = hashlib.sha256()
        total = 0
        async for chunk in request.aiter_bytes():
            digest.update(chunk)
            total += len(chunk)
            if delay:
                await AsyncClock.sleep(delay)
        return Response(
            200,
            json={
                "total": total,
                "sha256": digest.hexdigest(),
                "trailers": request.trailers.multi_items(),
                "http_version": request.http_version,
            },
        )
    if path == "/download":
        return Response(200, content=_blob_chunks(int(query["size"])))
    if path == "/slow":
        await AsyncClock.sleep(float(query.get("delay", "1")))
        return Response(200, text="slow done")
    if path == "/slow-body":
        count = int(query.get("n", "5"))
        return Response(200, content=_slow_chunks(count, float(query.get("delay", "0.1"))))
    if path == "/error":
        raise RuntimeError("boom: the handler failed on purpose")
    if path == "/error-midway":
        return Response(200, content=_failing_body())
    if path == "/trailers":
        return Response(
            200,
            content=_trailing_body(),
            trailers={"x-checksum": sha256(BLOB[:50000]), "x-count": "5"},
        )
    return Response(404, text="Not Found\n")


# -- the two transports ----------------------------------------------------------


@dataclass
class Mode:
    """How a test's server and client speak HTTP/2: h2c prior knowledge, or TLS+ALPN."""

    name: str
    server_options: dict[str, Any] = field(default_factory=dict)
    client_options: dict[str, Any] = field(default_factory=dict)

    def server(self, handler: Callable[..., Any] = app, **options: Any) -> AsyncServer:
        return AsyncServer(handler, port=0, **self.server_options, **options)

    def client(self, **options: Any) -> AsyncClient:
        options.setdefault("timeout", CLIENT_TIMEOUT)
        return AsyncClient(**self.client_options, **options)


@pytest.fixture(params=["h2c", "tls"])
def mode(
    request: pytest.FixtureRequest,
    server_ssl_context: ssl.SSLContext,
    h2_client_ssl_context: ssl.SSLContext,
    net: AsyncMemoryNetwork,
) -> Mode:
    """h2c runs on the in-process network; TLS with ALPN over real loopback sockets."""
    if request.param == "tls":
        return Mode(
            "tls",
            {"ssl": server_ssl_context},
            {"http2": True, "verify": h2_client_ssl_context},
        )
    return Mode("h2c", {"network": net}, {"http2_prior_knowledge": True, "network": net})


def h2c_client(**options: Any) -> AsyncClient:
    options.setdefault("timeout", CLIENT_TIMEOUT)
    return AsyncClient(http2_prior_knowledge=True, **options)


def _h2_server_connections(server: AsyncServer) -> list[AsyncServerHTTP2Connection]:
    with server._lock:
        conns = list(server._connections)
    return [c for c in conns if isinstance(c, AsyncServerHTTP2Connection)]


class BufferSampler:
    """Polls HTTP/2 connections' receive buffers; keeps the largest values seen."""

    def __init__(self, connections: Callable[[], list[Any]]) -> None:
        self._connections = connections
        self.max_stream = 0
        self.max_total = 0
        self.samples = 0
        self.stop = AsyncEvent()

    async def run(self, limit: float = 60.0) -> None:
        deadline = AsyncClock.now() + limit
        while not self.stop.is_set() and AsyncClock.now() < deadline:
            for conn in self._connections():
                with conn._lock:
                    core = conn._core
                    self.max_total = max(self.max_total, core._total_buffered)
                    for stream in core.streams.values():
                        self.max_stream = max(self.max_stream, stream.buffered)
                self.samples += 1
            await AsyncClock.sleep(0.001)


# -- 1. many streams, one connection --------------------------------------------


async def test_hundred_concurrent_requests_share_one_connection(mode: Mode) -> None:
    count = 100
    arrived: list[int] = []
    all_in = AsyncEvent()

    async def gate(request: Request) -> Response:
        # Every handler waits until all 100 are in flight at once: true multiplexing.
        assert request.client is not None
        arrived.append(request.client[1])
        if len(arrived) >= count:
            all_in.set()
        together = await all_in.wait(5.0)
        return Response(
            200,
            json={
                "port": request.client[1],
                "http_version": request.http_version,
                "together": together,
            },
        )

    results: dict[int, Any] = {}
    async with mode.server(gate) as server, mode.client() as client:

        async def fetch(index: int) -> None:
            try:
                results[index] = await client.get(server.url + f"/gate?i={index}")
            except Exception as exc:  # reported below, with the others
                results[index] = exc

        start = AsyncClock.now()
        async with AsyncTaskGroup() as tasks:
            for index in range(count):
                tasks.start_soon(fetch, index)
        elapsed = AsyncClock.now() - start
        assert client.connections_opened == 1

    errors = [r for r in results.values() if isinstance(r, Exception)]
    assert not errors, errors[:3]
    assert sorted(results) == list(range(count))
    seen = [r.json() for r in results.values()]
    assert all(r.status == 200 and r.http_version == "2" for r in results.values())
    assert all(s["http_version"] == "2" for s in seen)
    assert all(s["together"] for s in seen), "the 100 requests were not in flight together"
    assert len({s["port"] for s in seen}) == 1
    assert len(set(arrived)) == 1 and len(arrived) == count
    assert elapsed < 5.0


async def test_sequential_requests_reuse_the_connection(mode: Mode) -> None:
    async with mode.server() as server, mode.client() as client:
        ports = set()
        for _ in range(20):
            response = await client.get(server.url + "/peer")
            assert response.status == 200
            assert response.http_version == "2"
            ports.add(response.json()["port"])
        assert len(ports) == 1
        assert client.connections_opened == 1


# -- 2. ALPN ------------------------------------------------------------------------


async def test_alpn_falls_back_to_http11(
    h1_only_server_ssl_context: ssl.SSLContext, h2_client_ssl_context: ssl.SSLContext
) -> None:
    async with AsyncServer(app, port=0, ssl=h1_only_server_ssl_context, http2=False) as server:
        async with AsyncClient(
            http2=True, verify=h2_client_ssl_context, timeout=CLIENT_TIMEOUT
        ) as client:
            for _ in range(3):
                response = await client.get(server.url + "/peer")
                assert response.status == 200
                assert response.http_version == "1.1"
                assert response.json()["http_version"] == "1.1"
            response = await client.post(server.url + "/echo", content=b"over http/1.1")
            assert response.content == b"over http/1.1"
            assert client.connections_opened == 1


async def test_h2_chosen_by_alpn_on_a_server_without_http2_is_refused_once_loudly(
    server_ssl_context: ssl.SSLContext,
    h2_client_ssl_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The context offers h2, the server does not speak it: a browser would get a
    # protocol error from HTTP/1.1 bytes; the connection is closed instead, and the
    # log says why (once, not per connection).
    async with AsyncServer(app, port=0, ssl=server_ssl_context, http2=False) as server:
        async with AsyncClient(
            http2=True, verify=h2_client_ssl_context, timeout=CLIENT_TIMEOUT, retries=0
        ) as client:
            for _ in range(2):
                # Refused after the handshake: a transport error, never a TLS one.
                with pytest.raises(TransportError) as refused:
                    await client.get(server.url + "/peer")
                assert not isinstance(refused.value, ConnectError), refused.value
    warnings = [r for r in caplog.records if "ALPN chose h2" in r.getMessage()]
    assert len(warnings) == 1


async def test_alpn_picks_h2_when_offered(
    server_ssl_context: ssl.SSLContext, h2_client_ssl_context: ssl.SSLContext
) -> None:
    async with AsyncServer(app, port=0, ssl=server_ssl_context) as server:
        async with AsyncClient(
            http2=True, verify=h2_client_ssl_context, timeout=CLIENT_TIMEOUT
        ) as client:
            response = await client.get(server.url + "/peer")
            assert response.http_version == "2"
            assert response.json()["http_version"] == "2"


# -- 3. large bodies through small windows ----------------------------------------


async def test_ten_megabytes_each_way_per_stream_with_small_windows(mode: Mode) -> None:
    results: dict[str, Any] = {}
    async with mode.server(h2_settings=SMALL_WINDOWS) as server:
        async with mode.client(h2_settings=SMALL_WINDOWS) as client:

            async def echo(kind: str) -> None:
                # One stream uploads 10 MB (as bytes or as a stream) and downloads it back.
                content: Any = BLOB if kind == "bytes" else _blob_chunks(len(BLOB))
                try:
                    response = await client.post(server.url + "/echo", content=content)
                    results[kind] = (response.status, response.http_version, response.content)
                except Exception as exc:
                    results[kind] = exc

            async def download() -> None:
                digest = hashlib.sha256()
                total = 0
                try:
                    async with client.stream(
                        "GET", server.url + f"/download?size={len(BLOB)}"
                    ) as response:
                        async for chunk in response.aiter_bytes():
                            digest.update(chunk)
                            total += len(chunk)
                    results["download"] = (total, digest.hexdigest())
                except Exception as exc:
                    results["download"] = exc

            async with AsyncTaskGroup() as tasks:
                tasks.start_soon(echo, "bytes")
                tasks.start_soon(echo, "stream")
                tasks.start_soon(download)
            assert client.connections_opened == 1

    expected = sha256(BLOB)
    for kind in ("bytes", "stream"):
        result = results[kind]
        assert not isinstance(result, Exception), result
        status, version, body = result
        assert (status, version, len(body)) == (200, "2", len(BLOB))
        assert sha256(body) == expected
    assert results["download"] == (len(BLOB), expected)


# -- 4. slow consumers bound the buffers ---------------------------------------------


async def test_slow_server_reader_bounds_server_buffering(net: AsyncMemoryNetwork) -> None:
    streams = 3
    size = 1536 * 1024  # 4.5 MB in all
    results: dict[int, Any] = {}
    async with AsyncServer(app, port=0, h2_settings=SMALL_WINDOWS, network=net) as server:
        sampler = BufferSampler(lambda: _h2_server_connections(server))
        async with h2c_client(network=net) as client:

            async def upload(index: int) -> None:
                try:
                    response = await client.post(
                        server.url + "/sha256?delay=0.003", content=BLOB[:size]
                    )
                    results[index] = response.json()
                except Exception as exc:
                    results[index] = exc

            async with AsyncTaskGroup() as outer:
                outer.start_soon(sampler.run)
                async with AsyncTaskGroup() as tasks:
                    for index in range(streams):
                        tasks.start_soon(upload, index)
                sampler.stop.set()

    for index in range(streams):
        assert results[index] == {
            "total": size,
            "sha256": sha256(BLOB[:size]),
            "trailers": [],
            "http_version": "2",
        }
    window = SMALL_WINDOWS.initial_window_size
    assert sampler.samples > 10
    # The handlers read slower than the client sends: the buffers did fill up...
    assert sampler.max_stream >= window // 4
    # ...but never beyond what the windows allow.
    assert sampler.max_stream <= window
    assert sampler.max_total <= SMALL_WINDOWS.connection_window_size + window


async def test_slow_client_reader_bounds_client_buffering(net: AsyncMemoryNetwork) -> None:
    streams = 3
    size = 1536 * 1024
    results: dict[int, Any] = {}
    conns: list[AsyncHTTP2Connection] = []
    sampler = BufferSampler(lambda: list(conns))
    async with AsyncServer(app, port=0, network=net) as server:
        async with h2c_client(h2_settings=SMALL_WINDOWS, network=net) as client:

            async def download(index: int) -> None:
                digest = hashlib.sha256()
                total = 0
                try:
                    async with client.stream("GET", server.url + f"/download?size={size}") as r:
                        conn = r._stream._source  # type: ignore[union-attr]
                        if conn not in conns:
                            conns.append(conn)
                        async for chunk in r.aiter_bytes():
                            digest.update(chunk)
                            total += len(chunk)
                            await AsyncClock.sleep(0.003)
                    results[index] = (total, digest.hexdigest())
                except Exception as exc:
                    results[index] = exc

            async with AsyncTaskGroup() as outer:
                outer.start_soon(sampler.run)
                async with AsyncTaskGroup() as tasks:
                    for index in range(streams):
                        tasks.start_soon(download, index)
                sampler.stop.set()
            assert client.connections_opened == 1

    for index in range(streams):
        assert results[index] == (size, sha256(BLOB[:size]))
    window = SMALL_WINDOWS.initial_window_size
    assert len(conns) == 1
    assert sampler.samples > 10
    assert sampler.max_stream >= window // 4
    assert sampler.max_stream <= window
    assert sampler.max_total <= SMALL_WINDOWS.connection_window_size + window


# -- 5. a scripted peer that misbehaves ----------------------------------------------


@pytest.mark.parametrize(
    ("when", "code"),
    [
        ("before-headers", INTERNAL_ERROR),
        ("after-headers", INTERNAL_ERROR),
        ("after-headers", CANCEL),
        ("mid-body", INTERNAL_ERROR),
    ],
)
async def test_peer_reset_raises_stream_reset_and_connection_lives_on(when: str, code: int) -> None:
    async def script(conn: PeerConnection) -> None:
        [sid] = await conn.wait_requests(1)
        if when != "before-headers":
            await conn.send_headers(sid)
        if when == "mid-body":
            await conn.send_body(sid, b"partial", end_stream=False)
        await conn.reset(sid, code)
        await conn.wait_until(lambda: sid + 2 in conn.requests, "a second request")
        await conn.respond(sid + 2, b"second answer")
        await conn.wait_eof()

    async with h2_peer(script) as peer:
        async with h2c_client(network=peer.network) as client:
            start = AsyncClock.now()
            with pytest.raises(hyperpy.StreamReset) as info:
                await client.get(peer.url + "/reset-me")
            assert AsyncClock.now() - start < 1.0
            assert info.value.error_code == code
            assert info.value.remote is True
            response = await client.get(peer.url + "/second")
            assert response.status == 200
            assert response.content == b"second answer"
            assert client.connections_opened == 1
    assert len(peer.connections) == 1


async def test_refused_stream_is_retried_transparently() -> None:
    async def script(conn: PeerConnection) -> None:
        [sid] = await conn.wait_requests(1)
        await conn.reset(sid, REFUSED_STREAM)  # RFC 9113 §8.7: never processed
        retried = sid + 2
        await conn.wait_until(
            lambda: retried in conn.requests and conn.requests[retried].ended, "the retry"
        )
        retry = conn.requests[sid + 2]
        await conn.respond(sid + 2, retry.path.encode())
        await conn.wait_eof()

    async with h2_peer(script) as peer:
        async with h2c_client(network=peer.network) as client:
            response = await client.post(peer.url + "/refused", content=b"payload")
            assert response.status == 200
            assert response.content == b"/refused"
    assert peer.connections[0].requests[3].body == b"payload"


async def _goaway_exchange(
    last: int, code: int, finish: bool, close: bool = True
) -> tuple[dict[str, Any], dict[str, float], AsyncClient, Any]:
    """Three concurrent GETs on streams 1, 3, 5; the peer answers stream 1, says
    GOAWAY(last, code), then answers the streams up to ``last`` (if ``finish``) and
    closes (or, unless ``close``, waits for the client to). Returns each path's
    result and duration, the client and the peer."""
    paths = ["/a", "/b", "/c"]

    async def script(conn: PeerConnection) -> None:
        if conn.index == 0:
            sids = await conn.wait_requests(3)
            assert sids == [1, 3, 5]
            await conn.respond(1, conn.requests[1].path.encode())
            await conn.goaway(last, code)
            if finish:
                for sid in sids[1:]:
                    if sid <= last:
                        await conn.respond(sid, conn.requests[sid].path.encode())
            if close:
                await conn.close()
            else:
                await conn.wait_eof()
        else:
            retried = len([sid for sid in (3, 5) if sid > last])
            sids = await conn.wait_requests(retried)
            for sid in sids:
                await conn.respond(sid, conn.requests[sid].path.encode())
            await conn.wait_eof()

    results: dict[str, Any] = {}
    durations: dict[str, float] = {}
    async with h2_peer(script) as peer:
        async with h2c_client(network=peer.network) as client:

            async def fetch(path: str) -> None:
                start = AsyncClock.now()
                try:
                    results[path] = await client.get(peer.url + path)
                except Exception as exc:
                    results[path] = exc
                durations[path] = AsyncClock.now() - start

            async with AsyncTaskGroup() as tasks:
                for path in paths:
                    tasks.start_soon(fetch, path)
    return results, durations, client, peer


@pytest.mark.parametrize("last", [1, 3])
async def test_goaway_retries_unprocessed_streams_on_a_new_connection(last: int) -> None:
    results, durations, client, peer = await _goaway_exchange(last, NO_ERROR, finish=True)
    for path in ("/a", "/b", "/c"):
        response = results[path]
        assert not isinstance(response, Exception), (path, response)
        assert response.status == 200
        assert response.content == path.encode()
        assert durations[path] < 2.0
    assert client.connections_opened == 2
    first, second = peer.connections
    by_sid = {sid: r.path for sid, r in first.requests.items()}
    retried = {by_sid[sid] for sid in (3, 5) if sid > last}
    # Streams above the last-stream-id went again, on the new connection only.
    assert {r.path for r in second.requests.values()} == retried
    assert len(second.requests) == len(retried)
    assert sorted(peer.finished) == [0, 1]


async def test_goaway_error_then_close_fails_processed_stream_fast() -> None:
    results, durations, client, peer = await _goaway_exchange(3, INTERNAL_ERROR, finish=False)
    by_sid = {sid: r.path for sid, r in peer.connections[0].requests.items()}
    answered, cut, refused = by_sid[1], by_sid[3], by_sid[5]
    assert results[answered].content == answered.encode()
    error = results[cut]
    assert isinstance(error, hyperpy.ConnectionTerminated), error
    assert error.error_code == INTERNAL_ERROR
    assert error.last_stream_id == 3
    assert durations[cut] < 1.0
    # Stream 5 was above the last-stream-id: never processed, so retried elsewhere.
    assert results[refused].content == refused.encode()
    assert client.connections_opened == 2
    assert [r.path for r in peer.connections[1].requests.values()] == [refused]


async def test_goaway_error_without_close_ends_streams_in_flight_at_once() -> None:
    # The peer says GOAWAY(INTERNAL_ERROR, last=3) after answering stream 1, then holds
    # the connection open: stream 3 (at or below last) fails at once with
    # ConnectionTerminated, not after the 5 s read timeout; stream 5 is retried.
    results, durations, client, peer = await _goaway_exchange(
        3, INTERNAL_ERROR, finish=False, close=False
    )
    by_sid = {sid: r.path for sid, r in peer.connections[0].requests.items()}
    cut = results[by_sid[3]]
    assert isinstance(cut, hyperpy.ConnectionTerminated), results
    assert cut.error_code == INTERNAL_ERROR
    assert results[by_sid[5]].content == by_sid[5].encode()
    assert max(durations.values()) < 2.0, durations
    assert client.connections_opened == 2


@pytest.mark.parametrize("body", ["bytes", "stream"])
async def test_goaway_refusing_an_upload_in_progress(body: str) -> None:
    """GOAWAY(last_stream_id=0) while the request body is still going up: the upload
    stops at once; a replayable body is sent again on a new connection, a consumed
    stream cannot be and fails with ConnectionTerminated. Neither waits for a timeout."""
    upload = 300_000

    async def script(conn: PeerConnection) -> None:
        if conn.index == 0:
            conn.auto_ack = False  # the upload stalls at our 64 KiB windows...
            await conn.wait_requests(1, complete=False)
            await conn.wait_until(lambda: len(conn.requests[1].body) >= 16384, "some upload")
            await conn.goaway(0)  # ...and is refused: never processed
            await conn.wait_eof()  # the connection stays open: the client leaves it
        else:
            [sid] = await conn.wait_requests(1)
            await conn.respond(sid, b"%d" % len(conn.requests[sid].body))
            await conn.wait_eof()

    async with h2_peer(script) as peer:
        async with h2c_client(network=peer.network) as client:
            content: Any = BLOB[:upload] if body == "bytes" else _blob_chunks(upload, 16384)
            start = AsyncClock.now()
            if body == "bytes":
                response = await client.post(peer.url + "/upload", content=content)
                assert response.content == b"%d" % upload
                assert client.connections_opened == 2
            else:
                with pytest.raises(hyperpy.ConnectionTerminated) as info:
                    await client.post(peer.url + "/upload", content=content)
                assert "not retried" in str(info.value)
                assert client.connections_opened == 1
            assert AsyncClock.now() - start < 1.5
    first = peer.connections[0].requests[1]
    assert 16384 <= len(first.body) < upload


async def test_peer_response_trailers() -> None:
    async def script(conn: PeerConnection) -> None:
        for sid in (1, 3):
            await conn.wait_requests((sid + 1) // 2)
            await conn.respond(
                sid,
                b"body with trailers",
                headers=[("content-type", "text/plain")],
                trailers=[("x-checksum", "abc123"), ("x-count", "1")],
            )
        await conn.wait_eof()

    async with h2_peer(script) as peer:
        async with h2c_client(network=peer.network) as client:
            response = await client.get(peer.url + "/")
            assert response.content == b"body with trailers"
            assert response.headers["content-type"] == "text/plain"
            assert response.trailers["x-checksum"] == "abc123"
            assert response.trailers["x-count"] == "1"
            async with client.stream("GET", peer.url + "/streamed") as streamed:
                chunks = [chunk async for chunk in streamed.aiter_bytes()]
            assert b"".join(chunks) == b"body with trailers"
            assert streamed.trailers["x-checksum"] == "abc123"


@pytest.mark.parametrize("body", ["bytes", "stream"])
async def test_early_response_then_reset_no_error_completes(body: str) -> None:
    upload = 1_000_000

    async def script(conn: PeerConnection) -> None:
        conn.auto_ack = False  # the upload stalls once our 64 KiB windows are used
        await conn.wait_requests(1, complete=False)
        await conn.wait_until(lambda: len(conn.requests[1].body) >= 16384, "some upload")
        await conn.respond(1, b"early answer")
        await conn.reset(1, NO_ERROR)  # RFC 9113 §8.1: stop sending, the answer stands
        conn.auto_ack = True
        await conn.wait_until(lambda: 3 in conn.requests, "a second request")
        await conn.respond(3, b"second")
        await conn.wait_eof()

    async with h2_peer(script) as peer:
        async with h2c_client(network=peer.network) as client:
            content: Any = BLOB[:upload] if body == "bytes" else _blob_chunks(upload, 16384)
            start = AsyncClock.now()
            response = await client.post(peer.url + "/upload", content=content)
            assert AsyncClock.now() - start < 2.0
            assert response.status == 200
            assert response.content == b"early answer"
            second = await client.get(peer.url + "/second")
            assert second.content == b"second"
            assert client.connections_opened == 1
    received = peer.connections[0].requests[1]
    assert 16384 <= len(received.body) < upload
    assert not received.ended


# -- 6. server-side errors and trailers ------------------------------------------------


async def test_handler_error_before_headers_is_500(mode: Mode) -> None:
    async with mode.server() as server, mode.client() as client:
        response = await client.get(server.url + "/error")
        assert response.status == 500
        assert response.http_version == "2"
        assert (await client.get(server.url + "/")).content == b"ok"
        assert client.connections_opened == 1


async def test_handler_error_midway_resets_stream(mode: Mode) -> None:
    async with mode.server() as server, mode.client() as client:
        received = b""
        with pytest.raises(hyperpy.StreamReset) as info:
            async with client.stream("GET", server.url + "/error-midway") as response:
                assert response.status == 200
                async for chunk in response.aiter_bytes():
                    received += chunk
        assert info.value.error_code == INTERNAL_ERROR
        assert info.value.remote is True
        # What arrived before the reset is a prefix of the body (how much of it may vary).
        assert received == (b"a" * 20000 + b"b" * 20000)[: len(received)]
        # The connection is still fine for other streams.
        response = await client.get(server.url + "/peer")
        assert response.status == 200
        assert client.connections_opened == 1


async def test_server_response_trailers_reach_the_client(mode: Mode) -> None:
    async with mode.server() as server, mode.client() as client:
        response = await client.get(server.url + "/trailers")
        assert response.status == 200
        assert response.content == BLOB[:50000]
        assert response.trailers["x-checksum"] == sha256(BLOB[:50000])
        assert response.trailers["x-count"] == "5"


@pytest.mark.parametrize("body", ["bytes", "stream"])
async def test_request_trailers_reach_the_handler(mode: Mode, body: str) -> None:
    async with mode.server() as server, mode.client() as client:
        content: Any = BLOB[:100000] if body == "bytes" else _blob_chunks(100000, 30000)
        request = client.build_request("POST", server.url + "/sha256", content=content)
        request.trailers = Headers({"x-digest": sha256(BLOB[:100000]), "x-parts": "4"})
        response = await client.send(request)
        assert response.status == 200
        seen = response.json()
        assert seen["total"] == 100000
        assert seen["sha256"] == sha256(BLOB[:100000])
        assert seen["http_version"] == "2"
        assert dict(seen["trailers"]) == {"x-digest": sha256(BLOB[:100000]), "x-parts": "4"}


# -- 7. graceful shutdown ----------------------------------------------------------


async def test_graceful_shutdown_lets_in_flight_stream_finish(mode: Mode) -> None:
    release = AsyncEvent()
    shutdown_took: list[float] = []

    async def held(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"first half;"
            # Held until the client has seen the GOAWAY, so it surely came mid-flight.
            assert await release.wait(5.0)
            for index in range(5):
                await AsyncClock.sleep(0.02)
                yield b"part %d;" % index

        return Response(200, content=body())

    async with mode.server(held) as server, mode.client() as client:

        async def shut_down() -> None:
            start = AsyncClock.now()
            await server.shutdown(grace=5)
            shutdown_took.append(AsyncClock.now() - start)

        received = b""
        async with client.stream("GET", server.url + "/held") as response:
            conn = response._stream._source  # type: ignore[union-attr]
            chunks = response.aiter_bytes()
            async with AsyncTaskGroup() as tasks:
                received += await chunks.__anext__()
                tasks.start_soon(shut_down)
                for _ in range(500):  # bounded: up to 5 s
                    if conn._core.goaway_received is not None:
                        break
                    await AsyncClock.sleep(0.01)
                goaway = conn._core.goaway_received
                assert goaway is not None, "the client saw no GOAWAY"
                assert goaway.error_code == NO_ERROR
                # No new stream goes to a connection that said GOAWAY.
                assert not conn.is_available
                release.set()
                async for chunk in chunks:
                    received += chunk
        assert received == b"first half;" + b"".join(b"part %d;" % i for i in range(5))
        assert shutdown_took and shutdown_took[0] < 4.0  # drained, not timed out
        # The listener is closed: a new request cannot connect, and says so.
        with pytest.raises(hyperpy.ConnectError):
            await client.get(server.url + "/")
        assert client.connections_opened == 1


# -- 8. timeouts ------------------------------------------------------------------------


async def test_read_timeout_on_one_stream_keeps_the_connection(mode: Mode) -> None:
    async with mode.server() as server, mode.client() as client:
        assert (await client.get(server.url + "/")).status == 200
        start = AsyncClock.now()
        with pytest.raises(hyperpy.ReadTimeout):
            await client.get(server.url + "/slow?delay=1", timeout=Timeout(5, read=0.3))
        assert 0.25 <= AsyncClock.now() - start < 1.5
        response = await client.get(server.url + "/peer")
        assert response.status == 200
        assert client.connections_opened == 1


async def test_read_timeout_mid_body_keeps_the_connection(mode: Mode) -> None:
    async with mode.server() as server, mode.client() as client:
        received = b""
        with pytest.raises(hyperpy.ReadTimeout):
            async with client.stream(
                "GET", server.url + "/slow-body?n=3&delay=1", timeout=Timeout(5, read=0.3)
            ) as response:
                async for chunk in response.aiter_bytes():
                    received += chunk
        assert received == b"chunk 0;"
        response = await client.get(server.url + "/")
        assert response.content == b"ok"
        assert client.connections_opened == 1


# -- 9. one stream's failure stays on that stream -----------------------------------------


async def _upload_then_fail() -> AsyncIterator[bytes]:
    yield b"x" * 1000
    await AsyncClock.sleep(0.2)
    raise RuntimeError("the upload failed on purpose")


async def test_client_reset_mid_upload_keeps_other_streams(mode: Mode) -> None:
    # The handler reading the abandoned upload gets StreamReset: that must end its
    # stream only, not the connection's other handlers.
    async with mode.server() as server, mode.client() as client:
        assert (await client.get(server.url + "/")).status == 200
        results: dict[str, Response] = {}

        async def slow() -> None:
            results["slow"] = await client.get(server.url + "/slow?delay=0.6")

        async with AsyncTaskGroup() as group:
            group.start_soon(slow)
            with pytest.raises(RuntimeError):
                await client.post(server.url + "/sha256", content=_upload_then_fail())
        assert results["slow"].status == 200
        assert (await client.get(server.url + "/")).status == 200
        assert client.connections_opened == 1
