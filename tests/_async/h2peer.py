"""A scripted raw HTTP/2 server for the client tests: misbehaviour on demand.

``h2_peer(script)`` listens on an in-process network (``peer.network``, where the
test's client connects) and runs ``script(conn)`` for every
accepted connection (``conn.index`` counts them from 0). The script drives an
``h2`` server-side connection by hand through ``PeerConnection``: it waits for
requests, answers, resets, sends GOAWAY (written raw, so h2 keeps serving the
streams it promised to finish) and closes whenever the test wants.

Written with hyperpy's own names only (no event loop library), so that the
generated blocking tests run it with threads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
from hyperframe.frame import GoAwayFrame

from hyperpy._backends import AsyncClock, AsyncListener, AsyncStream, AsyncTaskGroup
from hyperpy.testing import AsyncMemoryNetwork

IO_TIMEOUT = 5.0
MAX_CHUNK = 16384  # the client's (and h2's default) maximum frame size


@dataclass
class PeerRequest:
    """One request stream as the peer saw it."""

    stream_id: int
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    trailers: dict[str, str] | None = None
    reset_code: int | None = None

    @property
    def path(self) -> str:
        return self.headers[":path"]


def _decode(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}


class PeerConnection:
    """One accepted connection with an h2 server state machine, driven by a script."""

    def __init__(self, stream: AsyncStream, index: int) -> None:
        self.stream = stream
        self.index = index
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.requests: dict[int, PeerRequest] = {}
        self.eof = False
        # Give flow-control credit back as DATA arrives (off: the client's uploads
        # stall once the peer's 64 KiB windows are used up).
        self.auto_ack = True
        self.client_goaway: h2.events.ConnectionTerminated | None = None

    async def start(self) -> None:
        """Send our preface (SETTINGS)."""
        self.h2.initiate_connection()
        await self.flush()

    async def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            await self.stream.send_all(data, IO_TIMEOUT)

    async def receive_once(self) -> None:
        """Read once from the client and process what arrived."""
        data = await self.stream.receive(65536, IO_TIMEOUT)
        if not data:
            self.eof = True
            return
        for event in self.h2.receive_data(data):
            self._on_event(event)
        await self.flush()  # SETTINGS and PING acks, WINDOW_UPDATEs

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            sid = event.stream_id
            self.requests[sid] = PeerRequest(sid, _decode(event.headers))  # type: ignore[arg-type]
            if event.stream_ended is not None:
                self.requests[sid].ended = True
        elif isinstance(event, h2.events.DataReceived):
            request = self.requests.get(event.stream_id)
            if request is not None:
                request.body += event.data
            if self.auto_ack and event.flow_controlled_length:
                try:
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                    pass
        elif isinstance(event, h2.events.TrailersReceived):
            self.requests[event.stream_id].trailers = _decode(event.headers)  # type: ignore[arg-type]
        elif isinstance(event, h2.events.StreamEnded):
            if event.stream_id in self.requests:
                self.requests[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            if event.stream_id in self.requests:
                self.requests[event.stream_id].reset_code = int(event.error_code or 0)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.client_goaway = event

    async def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        """Keep receiving until ``condition()`` holds (bounded by IO_TIMEOUT)."""
        deadline = AsyncClock.now() + IO_TIMEOUT
        while not condition():
            if self.eof:
                raise AssertionError(f"the client closed the connection; waited for {what}")
            if AsyncClock.now() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await self.receive_once()

    async def wait_requests(self, count: int, complete: bool = True) -> list[int]:
        """Wait for ``count`` request heads (and their ends, if ``complete``);
        returns their stream ids, lowest first."""

        def ready() -> bool:
            done = [r for r in self.requests.values() if r.ended or not complete]
            return len(done) >= count

        await self.wait_until(ready, f"{count} request(s)")
        return sorted(self.requests)[:count]

    async def wait_eof(self) -> None:
        """Keep reading until the client closes the connection."""
        await self.wait_until(lambda: self.eof, "the client to close")

    async def send_headers(
        self, sid: int, status: int = 200, headers: list[tuple[str, str]] | None = None
    ) -> None:
        fields = [(":status", str(status)), *(headers or [])]
        self.h2.send_headers(sid, fields)
        await self.flush()

    async def send_body(self, sid: int, data: bytes, end_stream: bool = True) -> None:
        """Send ``data`` in frames as the client's flow-control windows allow."""
        view = memoryview(data)
        deadline = AsyncClock.now() + IO_TIMEOUT
        while True:
            window = min(self.h2.local_flow_control_window(sid), MAX_CHUNK)
            if view and window <= 0:
                assert AsyncClock.now() < deadline, "no flow-control credit from the client"
                await self.receive_once()
                assert not self.eof, "the client closed while we were sending"
                continue
            size = min(window, len(view))
            last = end_stream and size == len(view)
            self.h2.send_data(sid, bytes(view[:size]), end_stream=last)
            view = view[size:]
            await self.flush()
            if not view:
                if end_stream and not last:
                    self.h2.end_stream(sid)
                    await self.flush()
                return

    async def respond(
        self,
        sid: int,
        body: bytes = b"",
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        trailers: list[tuple[str, str]] | None = None,
    ) -> None:
        """A complete response: HEADERS, DATA, then END_STREAM (on trailers if any)."""
        await self.send_headers(sid, status, headers)
        await self.send_body(sid, body, end_stream=trailers is None)
        if trailers is not None:
            self.h2.send_headers(sid, trailers, end_stream=True)
            await self.flush()

    async def reset(self, sid: int, code: int = h2.errors.ErrorCodes.CANCEL) -> None:
        self.h2.reset_stream(sid, code)
        await self.flush()

    async def goaway(self, last_stream_id: int, code: int = 0) -> None:
        """A GOAWAY written raw: h2 would refuse to send anything after its own."""
        await self.flush()
        frame = GoAwayFrame(0, last_stream_id=last_stream_id, error_code=code)
        await self.stream.send_all(frame.serialize(), IO_TIMEOUT)

    async def close(self) -> None:
        """Half-close, let the client's last bytes arrive, then close (no TCP reset)."""
        await self.flush()
        await self.stream.close_lingering(1.0)


Script = Callable[[PeerConnection], Awaitable[None]]


class H2Peer:
    """The listening side of ``h2_peer``; ``connections`` in accept order."""

    def __init__(
        self, script: Script, listener: AsyncListener, network: AsyncMemoryNetwork
    ) -> None:
        self.script = script
        self.network = network
        self.listener = listener
        self.port = listener.address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections: list[PeerConnection] = []
        self.errors: list[BaseException] = []
        # Indexes of the connections whose script returned, and that returned or failed
        # (lists: appending is atomic, also for threads).
        self.finished: list[int] = []
        self.done: list[int] = []
        self._closing = False

    async def _accept_loop(self, task_group: AsyncTaskGroup) -> None:
        while True:
            try:
                stream = await self.listener.accept()
            except Exception:
                # The sync listener raises (instead of returning None) when it is closed
                # just before accept() starts waiting.
                if self._closing:
                    return
                raise
            if stream is None:
                return
            conn = PeerConnection(stream, len(self.connections))
            self.connections.append(conn)
            task_group.start_soon(self._run, conn)

    async def _run(self, conn: PeerConnection) -> None:
        try:
            await conn.start()
            await self.script(conn)
            self.finished.append(conn.index)
        except Exception as exc:
            if not self._closing:
                self.errors.append(exc)  # re-raised when the peer is closed
        finally:
            self.done.append(conn.index)
            await conn.stream.aclose()

    async def _let_scripts_finish(self, grace: float) -> None:
        """Scripts ending in ``wait_eof`` see the client's close soon after it: let them
        process what the client sent last, so the test can assert on it."""
        deadline = AsyncClock.now() + grace
        while len(self.done) < len(self.connections) and AsyncClock.now() < deadline:
            await AsyncClock.sleep(0.005)


@asynccontextmanager
async def h2_peer(script: Script) -> AsyncIterator[H2Peer]:
    """Serve ``script`` on a free port until the block ends; script failures are
    re-raised at the end (so a broken script cannot pass as a client bug)."""
    network = AsyncMemoryNetwork()
    listener = await network.listen_tcp("127.0.0.1", 0)
    peer = H2Peer(script, listener, network)
    async with AsyncTaskGroup() as task_group:
        task_group.start_soon(peer._accept_loop, task_group)
        try:
            yield peer
        finally:
            await peer._let_scripts_finish(2.0)
            peer._closing = True
            await listener.aclose()
            for conn in peer.connections:
                await conn.stream.aclose()
            task_group.cancel()
    if peer.errors:
        raise peer.errors[0]
