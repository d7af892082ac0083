"""The server: accepts connections, picks HTTP/1.1 or HTTP/2 for each, drains on shutdown."""

from __future__ import annotations

import logging
from ssl import SSLContext
from types import TracebackType
from typing import Any, Union

from ..._backends import (
    Address,
    AsyncClock,
    AsyncEvent,
    AsyncListener,
    AsyncNetwork,
    AsyncParker,
    AsyncSemaphore,
    AsyncShield,
    AsyncSocketNetwork,
    AsyncStateLock,
    AsyncStream,
    AsyncTaskGroup,
    AsyncTaskStatus,
    AsyncWorkerPool,
)
from ..._config import H2Settings, ServerLimits
from ..._core.engine import choose as choose_engine
from ..._core.h2 import PREFACE
from ..._core.idle import ExpiryQueue, IdleTable
from ..._exceptions import ReadError, TransportError
from ..._models import Request, Response
from ..._tls import server_ssl_context
from ..._types import AsyncHandler, AsyncTaskFn
from ..background import AsyncBackgroundTasks
from .http2 import AsyncServerHTTP2Connection
from .http11 import PARKED, AsyncServerHTTP11Connection

logger = logging.getLogger("hyperpy.server")

ServerConnection = Union[AsyncServerHTTP11Connection, AsyncServerHTTP2Connection]


class AsyncServer:
    """Serves ``app`` (``async def app(request) -> Response``) over HTTP/1.1 and HTTP/2.

    Run it in a block, ``async with server:`` (it listens before the block
    starts), or with ``await server.start()`` and later ``await server.stop()``,
    or in the foreground with ``await server.serve_forever()`` until
    ``shutdown`` is called. The bound address is ``server.address`` (``port=0``
    picks a free port) and ``server.url`` its base URL.

    On a cleartext port it speaks HTTP/1.1 and, when ``http2`` is on, h2c (prior
    knowledge or ``Upgrade: h2c``); over TLS, what ALPN picked. ``ssl`` takes
    an SSLContext (set its ALPN protocols to ["h2", "http/1.1"] for HTTP/2), or
    give ``certfile``/``keyfile`` and one is built. ``network`` is where it
    listens: the OS's sockets by default, or a ``hyperpy.testing`` memory
    network. ``uds`` listens on that Unix domain socket path instead of
    ``host``/``port``, and ``fd`` on an already listening socket (inherited from
    a supervisor, say). ``access_log`` logs a line per request to the
    ``hyperpy.access`` logger (see docs/server.md for the format). ``engine`` is
    the HTTP/1.1 parser: "h11" or "zttp" (``hyperpy[fast]``); by default
    ``HYPERPY_ENGINE``, else the fastest installed.

    If ``app`` has a ``lifespan`` attribute, it is called with a function that
    starts a task beside the server, and must return an async context manager:
    the server enters it before taking requests (a failure there stops the
    server) and leaves it after the last connection closed. The ASGI adapter
    runs an app's lifespan protocol this way.
    """

    def __init__(
        self,
        app: AsyncHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        ssl: SSLContext | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        http2: bool = True,
        limits: ServerLimits = ServerLimits(),
        h2_settings: H2Settings = H2Settings(),
        backlog: int = 1024,
        network: AsyncNetwork | None = None,
        uds: str | None = None,
        fd: int | None = None,
        access_log: bool = False,
        engine: str | None = None,
    ) -> None:
        self.app = app
        self.engine = choose_engine(engine)
        self.uds = uds
        self.fd = fd
        self.access_log = access_log
        self.lifespan_timeout = 30.0  # how long the app's shutdown may take
        self.host = host
        self.port = port
        self.http2 = http2
        self.limits = limits
        self.h2_settings = h2_settings
        alpn = ("h2", "http/1.1") if http2 else ("http/1.1",)
        self.ssl_context = server_ssl_context(ssl, certfile, keyfile, alpn)
        self.backlog = backlog
        self.address: Address | None = None
        self.network: AsyncNetwork = network if network is not None else AsyncSocketNetwork()
        self._listener: AsyncListener | None = None
        self._task_group: AsyncTaskGroup | None = None
        self._background = AsyncBackgroundTasks()
        self._connections: set[ServerConnection] = set()
        # Connections still in TLS handshake or protocol detection: no request yet.
        self._opening: set[AsyncStream] = set()
        # Connections with nothing in progress, oldest first: shed when full.
        self._idle_streams: IdleTable[AsyncStream] = IdleTable()
        # Idle HTTP/1.1 connections' keep-alive deadlines, where the server keeps them.
        self._expiry: ExpiryQueue[AsyncStream] = ExpiryQueue()
        self._expiry_added = AsyncEvent()  # wakes ``_close_expired`` (and at stop)
        self._lock = AsyncStateLock()
        self._alpn_warned = False
        self._all_closed = AsyncEvent()  # no connection is open
        self._all_closed.set()
        self._slots = AsyncSemaphore(limits.max_connections)
        # Made while serving (a blocking parker opens a pipe and a selector thread).
        self._workers: AsyncWorkerPool | None = None
        self._parker: AsyncParker | None = None
        self._stopped = AsyncEvent()
        self._draining = False

    @property
    def url(self) -> str:
        """Base URL of the bound address (after start)."""
        assert self.address is not None, "the server is not started"
        if self.uds is not None:
            return f"{'https' if self.ssl_context else 'http'}://localhost"
        host, port = self.address
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.ssl_context else 'http'}://{host}:{port}"

    async def serve(self, *, task_status: Any = AsyncTaskStatus.IGNORED) -> None:
        """Listen and serve until ``shutdown``; reports the bound address when listening."""
        if self.fd is not None:
            listener = await self.network.listen_fd(self.fd, self.backlog)
        elif self.uds is not None:
            listener = await self.network.listen_unix(self.uds, self.backlog)
        else:
            listener = await self.network.listen_tcp(self.host, self.port, self.backlog)
        self._listener = listener
        self.address = listener.address
        lifespan = getattr(self.app, "lifespan", None)
        startup_error: Exception | None = None
        try:
            async with AsyncTaskGroup() as task_group:
                self._task_group = task_group
                self._workers = AsyncWorkerPool(task_group.start_soon, self.limits.max_workers)
                # Readable parked connections resume on the parker's own workers; those
                # whose idle deadline passes, on the pool.
                self._parker = AsyncParker(
                    task_group.start_soon, self.limits.max_workers, self._workers.start_soon
                )
                span = None
                try:
                    if lifespan is not None:
                        # The app's own start-up (an ASGI app's lifespan, say): it may
                        # run tasks beside the server, and a failure stops the server
                        # before it takes a request.
                        try:
                            span = lifespan(task_group.start_soon)
                            await span.__aenter__()
                        except Exception as exc:
                            startup_error, span = exc, None
                            task_group.cancel()
                    if startup_error is None:
                        if self.closes_idle:
                            task_group.start_soon(self._close_expired)
                        task_status.started(self.address)
                        await self._accept_loop(listener, task_group)
                        await self._stopped.wait()
                finally:
                    self._parker.close()
                    self._workers.close()  # (a closed parker resumes at once)
                    if span is not None:
                        with AsyncShield(self.lifespan_timeout):
                            await span.__aexit__(None, None, None)
        finally:
            self._task_group = None
            await listener.aclose()
        if startup_error is not None:
            raise startup_error  # as itself, not wrapped by the task group

    async def serve_forever(self) -> None:
        """Serve until ``shutdown`` is called (from another task)."""
        await self.serve()

    async def _accept_loop(self, listener: AsyncListener, task_group: AsyncTaskGroup) -> None:
        while not self._draining:
            if not self._slots.try_acquire():
                # Full: make room by closing the connection idle the longest (nothing
                # is in progress on it, so nothing is lost), so that silent or idle
                # peers never lock active clients out. With every connection busy,
                # new ones wait in the kernel's accept backlog.
                await self._shed_idle()
                await self._slots.acquire()
            stream = await listener.accept()
            if stream is None:
                self._slots.release()
                return
            with self._lock:
                draining = self._draining
                if not draining:
                    self._opening.add(stream)
                    self._all_closed.clear()
                    self._idle_streams.idle(stream, AsyncClock.now())  # no byte of a head yet
            if draining:
                await self._end(stream, None)
                continue
            deadline = self._idle_deadline()
            self._when_readable(
                stream, deadline, task_group.start_soon, self._open, stream, deadline
            )

    def _idle_deadline(self) -> float | None:
        """When a new connection that has sent nothing is closed: at the keep-alive
        timeout, or sooner over TLS, whose handshake is under way from the start."""
        limits = self.limits
        waits = [limits.keep_alive_timeout]
        if self.ssl_context is not None:
            waits.append(limits.tls_handshake_timeout)
        bounds = [wait for wait in waits if wait is not None]
        return AsyncClock.now() + min(bounds) if bounds else None

    def _when_readable(
        self,
        stream: AsyncStream,
        deadline: float | None,
        start: Any,
        fn: AsyncTaskFn,
        *args: Any,
    ) -> None:
        """Run ``start(fn, *args)``, once ``stream`` has bytes to read where idle
        connections are parked (the blocking world); at once where they are not."""
        parker = self._parker
        if parker is not None and parker.parks and not stream.is_readable():
            parker.park(stream, deadline, start, fn, *args)
        else:
            start(fn, *args)

    async def _shed_idle(self) -> None:
        with self._lock:
            victim = self._idle_streams.pop_oldest()
            if victim is not None:
                self._expiry.remove(victim)
        if victim is not None:
            logger.debug("at the connection limit: closing an idle connection")
            await victim.aclose()  # wakes its reader; its slot comes back as it ends

    def connection_idle(self, stream: AsyncStream, expires: float | None = None) -> None:
        """``stream``'s connection has no request in progress: it may be shed, and
        is closed at ``expires`` if still idle, where ``closes_idle`` (see
        ``_close_expired``; parked connections' deadlines are the parker's)."""
        with self._lock:
            self._idle_streams.idle(stream, AsyncClock.now())
            if expires is not None and self.closes_idle:
                first = not self._expiry
                self._expiry.add(stream, expires)
                if first:
                    self._expiry_added.set()  # the sweeper may sleep with nothing to do

    def connection_busy(self, stream: AsyncStream) -> None:
        """``stream``'s connection has a request in progress: never shed it."""
        with self._lock:
            self._idle_streams.busy(stream)
            self._expiry.remove(stream)

    @property
    def closes_idle(self) -> bool:
        """Where connections are not parked, one task closes every idle HTTP/1.1
        connection at its keep-alive deadline, so that none of them holds a timer
        (a cancel scope, a deadline entry) while it waits."""
        return not AsyncParker.parks

    async def _close_expired(self) -> None:
        """Close connections that stayed idle past their deadline, until the server
        stops. Closing never checkpoints, so a connection that has just received
        bytes (and left the queue) is never closed by a stale decision."""
        while not self._stopped.is_set():
            with self._lock:
                self._expiry_added.clear()
                due = self._expiry.pop_due(AsyncClock.now())
                for stream in due:
                    self._idle_streams.busy(stream)
                    stream.close_now()  # its reader wakes, and the connection ends
                next_at = self._expiry.next_deadline()
            if due:
                logger.debug("closed %d connection(s) idle past the keep-alive timeout", len(due))
            # Deadlines only grow: one added later never needs an earlier wake-up,
            # except into an empty queue (``_expiry_added``).
            await self._expiry_added.wait(
                None if next_at is None else max(0.0, next_at - AsyncClock.now())
            )

    @property
    def parks(self) -> bool:
        """Idle connections give up their thread (the blocking world)."""
        return AsyncParker.parks

    async def _open(self, stream: AsyncStream, deadline: float | None) -> None:
        """A new connection: TLS and protocol detection, then serving it."""
        if AsyncParker.parks and not stream.is_readable():
            # Resumed at the idle deadline: the peer never sent a byte.
            await self._end(stream, None)
            return
        try:
            conn = await self._open_connection(stream)
        except TransportError as exc:
            logger.debug("connection ended before its first request: %s", exc)
            conn = None
        except Exception:
            logger.exception("connection handler failed")
            conn = None
        if conn is None:
            await self._end(stream, None)
            return
        with self._lock:
            self._opening.discard(stream)
        await self._serve(conn)

    async def _serve(self, conn: ServerConnection) -> None:
        """Serve ``conn`` until it ends, or until it is idle where idle connections
        are parked: it then resumes here, on a worker, once it has bytes to read."""
        stream = conn.stream
        with self._lock:
            new = conn not in self._connections
            if new:
                self._connections.add(conn)
                self._all_closed.clear()
            draining = self._draining
        if new and draining:
            conn.begin_shutdown()
        ended = True
        try:
            outcome = await conn.run()
            if outcome is PARKED:
                assert isinstance(conn, AsyncServerHTTP11Connection)
                assert self._parker is not None  # made by serve
                # None: resumed right on the parker's worker that sees it readable.
                self._parker.park(stream, conn.idle_deadline, None, self._serve, conn)
                ended = False
            elif outcome is not None:
                # The HTTP/1.1 connection switched to h2c: HTTP/2 takes the stream
                # over, for good, in a task (a thread) of its own.
                h2 = AsyncServerHTTP2Connection(self, outcome.stream, outcome.initial, outcome)
                with self._lock:
                    self._connections.discard(conn)
                assert self._task_group is not None
                self._task_group.start_soon(self._serve, h2)
                ended = False
        except TransportError as exc:
            logger.debug("connection ended: %s", exc)
        except Exception:
            # One connection's failure must never stop the server.
            logger.exception("connection handler failed")
        finally:
            if ended:
                await self._end(stream, conn)

    async def _end(self, stream: AsyncStream, conn: ServerConnection | None) -> None:
        """The connection is over: forget it, free its slot, close its stream."""
        with self._lock:
            self._opening.discard(stream)
            self._idle_streams.busy(stream)
            self._expiry.remove(stream)
            if conn is not None:
                self._connections.discard(conn)
            if not self._connections and not self._opening:
                self._all_closed.set()
        self._slots.release()
        with AsyncShield(1.0):
            await stream.aclose()

    async def _open_connection(self, stream: AsyncStream) -> ServerConnection | None:
        """The connection for ``stream``: TLS first if configured, then HTTP/2 if ALPN
        chose it or the client's first bytes are the h2 preface, else HTTP/1.1."""
        initial = b""
        if self.ssl_context is not None:
            stream = await stream.start_tls(
                self.ssl_context,
                server_hostname=None,
                server_side=True,
                timeout=self.limits.tls_handshake_timeout,
                error=ReadError,
            )
            if stream.alpn == "h2":
                if self.http2:
                    return AsyncServerHTTP2Connection(self, stream, b"")
                # The caller's context offers h2 but HTTP/2 is off: the client now
                # expects h2, and answering in HTTP/1.1 would be a protocol error on
                # its side. Close, and say why once.
                if not self._alpn_warned:
                    self._alpn_warned = True
                    logger.warning(
                        "ALPN chose h2 but this server has http2=False: closing; enable"
                        " http2, or leave h2 out of the ssl context's ALPN protocols"
                    )
                await stream.aclose()
                return None
        elif self.http2:
            # Cleartext: prior-knowledge h2c starts with the connection preface. Until
            # its first byte the connection is idle; then it is a head being sent.
            first_byte_at: float | None = None
            while len(initial) < len(PREFACE) and PREFACE.startswith(initial):
                if first_byte_at is None:
                    timeout = self.limits.keep_alive_timeout
                elif self.limits.header_read_timeout is None:
                    timeout = None
                else:
                    elapsed = AsyncClock.now() - first_byte_at
                    timeout = max(0.0, self.limits.header_read_timeout - elapsed)
                data = await stream.receive(65536, timeout)
                if not data:
                    break
                if first_byte_at is None:
                    first_byte_at = AsyncClock.now()
                initial += data
            if initial.startswith(PREFACE):
                return AsyncServerHTTP2Connection(self, stream, initial)
            return AsyncServerHTTP11Connection(self, stream, initial, first_byte_at)
        return AsyncServerHTTP11Connection(self, stream, initial)

    async def call_app(self, request: Request) -> Response | None:
        """Run the handler; an exception becomes a logged 500."""
        try:
            response = await self.app(request)
            if not isinstance(response, Response):
                raise TypeError(f"the handler returned {type(response).__name__}, not Response")
            return response
        except TransportError:
            raise
        except Exception:
            logger.exception("handler error for %s %s", request.method, request.url)
            return Response(500, text="Internal Server Error\n")

    def spawn_task(self, fn: AsyncTaskFn, *args: Any) -> None:
        """Run ``fn`` in the server's task group (graceful-shutdown steps)."""
        if self._task_group is not None:
            self._task_group.start_soon(fn, *args)

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop accepting; let requests in flight finish for up to ``grace`` seconds
        (HTTP/1.1 answers with ``Connection: close``, HTTP/2 sends GOAWAY), then close."""
        with self._lock:
            self._draining = True
            conns = list(self._connections)
            opening = list(self._opening)
        if self._listener is not None:
            await self._listener.aclose()
        for stream in opening:
            await stream.aclose()  # nothing was asked on it yet: nothing is lost
        for conn in conns:
            conn.begin_shutdown()
        start = AsyncClock.now()
        await self._all_closed.wait(grace)
        with self._lock:
            busy = len(self._connections)
        if busy:
            logger.warning(
                "%d connection(s) still busy after %.1f s grace: closing them",
                busy,
                AsyncClock.now() - start,
            )
        await self._close_now()

    async def _close_now(self) -> None:
        """Stop at once: close the listener and every connection, and let ``serve``
        return. The end of a graceful shutdown, or what is left of one cut short."""
        with self._lock:
            self._draining = True
            left = list(self._connections)
            opening = list(self._opening)
        with AsyncShield(2.0):
            if self._listener is not None:
                await self._listener.aclose()
            for stream in opening:
                await stream.aclose()
            for conn in left:
                await conn.abort()
        self._stopped.set()
        self._expiry_added.set()
        if self._task_group is not None and left:
            self._task_group.cancel()

    async def __aenter__(self) -> AsyncServer:
        group = await self._background.open()
        try:
            await group.start(self.serve)
        except BaseException:
            await self._background.close(cancel=False)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self._stop(5.0, exc_type, exc, tb)

    async def start(self) -> Address:
        """Serve in the background (a thread in the sync world); return the bound address.

        Stop with ``stop()``; ``async with server:`` does both.
        """
        await self.__aenter__()
        assert self.address is not None
        return self.address

    async def stop(self, grace: float = 10.0) -> None:
        """Shut down a server started with ``start()``."""
        await self._stop(grace)

    async def _stop(
        self,
        grace: float,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        done = False
        try:
            await self.shutdown(grace)
            done = True
        finally:
            if not done:
                # The shutdown was cut short (cancelled, interrupted, failed): finish
                # it abruptly, or ``serve`` would never return and leaving would wait
                # for it forever.
                await self._close_now()
            await self._background.close(exc_type, exc, tb, cancel=not done)
