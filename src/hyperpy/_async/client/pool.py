"""The connection pool driver: carries out what ``_core.pool.PoolCore`` decides."""

from __future__ import annotations

import ssl
from typing import Union

from ..._backends import (
    AsyncClock,
    AsyncEvent,
    AsyncNetwork,
    AsyncShield,
    AsyncStateLock,
    AsyncTaskGroup,
)
from ..._config import H2Settings
from ..._core.deadline import StepLimits
from ..._core.pool import CONNECT, USE, Origin, PoolCore
from ..._exceptions import ClientClosed, PoolTimeout
from ..._models import Request, Response
from ..waitlist import AsyncWaitList
from .connect import Route, open_stream
from .http2 import AsyncHTTP2Connection
from .http11 import AsyncHTTP11Connection

Connection = Union[AsyncHTTP11Connection, AsyncHTTP2Connection]


class AsyncConnectionPool:
    """Opens, shares, reuses and closes a client's connections."""

    def __init__(
        self,
        *,
        network: AsyncNetwork,
        ssl_context: ssl.SSLContext | None,
        http1: bool,
        http2: bool,
        http2_prior_knowledge: bool,
        h2_settings: H2Settings,
        max_connections: int | None,
        max_keepalive: int | None,
        keepalive_expiry: float | None,
        task_group: AsyncTaskGroup | None,
        route: Route = Route(),
        engine: str = "h11",
    ) -> None:
        self._network = network
        self._engine = engine
        self._route = route
        self._ssl_context = ssl_context
        self._http1 = http1
        self._http2 = http2
        self._prior_knowledge = http2_prior_knowledge
        self._h2_settings = h2_settings
        self._core: PoolCore[Connection] = PoolCore(
            max_connections, max_keepalive, keepalive_expiry
        )
        self._lock = AsyncStateLock()
        self._waiters = AsyncWaitList()  # requests waiting for a connection
        self._task_group = task_group
        self._closed = False
        self.connections_opened = 0

    def _may_multiplex(self, origin: Origin) -> bool:
        if origin[0] == "https":
            return self._http2
        return self._prior_knowledge and not self._route.forwards

    async def handle_request(self, request: Request, timeout: StepLimits) -> Response:
        """Send ``request`` over a pooled connection; return once the head arrived."""
        origin = self._route.pool_origin(request.url.origin)
        conn = await self._acquire(origin, self._may_multiplex(origin), timeout)
        # RequestNotProcessed goes up to the client, whose one retry policy per
        # request decides whether to send it again (on another connection: this
        # one was released as not reusable).
        return await conn.handle_request(request, timeout, self._release)

    async def _acquire(
        self, origin: Origin, may_multiplex: bool, timeout: StepLimits
    ) -> Connection:
        deadline = None if timeout.pool is None else AsyncClock.now() + timeout.pool
        while True:
            if self._closed:
                raise ClientClosed("the client was closed")
            waiter: AsyncEvent | None = None
            with self._lock:
                decision = self._core.checkout(origin, AsyncClock.now(), may_multiplex)
                if decision.action not in (USE, CONNECT):
                    waiter = self._waiters.register()
            await self._close_all(decision.close)
            if decision.action == USE:
                conn = decision.conn
                assert conn is not None
                if not conn.multiplexed and conn.is_stale():
                    with self._lock:
                        self._core.remove(conn)
                    self._wake()
                    await self._close_all([conn])
                    continue
                return conn
            if decision.action == CONNECT:
                return await self._connect(origin, may_multiplex, timeout)
            assert waiter is not None
            remaining = None if deadline is None else deadline - AsyncClock.now()
            try:
                if (remaining is not None and remaining <= 0) or not await waiter.wait(remaining):
                    raise PoolTimeout(f"no connection to {origin[1]} became free in time")
            finally:
                with self._lock:
                    self._waiters.discard(waiter)

    async def _connect(
        self, origin: Origin, may_multiplex: bool, timeout: StepLimits
    ) -> Connection:
        try:
            conn = await self._open(origin, timeout)
        except BaseException:
            with self._lock:
                self._core.connect_failed(origin, may_multiplex)
            self._wake()
            raise
        with self._lock:
            self._core.connected(origin, conn, may_multiplex, conn.multiplexed)
            self.connections_opened += 1
        self._wake()
        return conn

    async def _open(self, origin: Origin, timeout: StepLimits) -> Connection:
        route = self._route
        stream = await open_stream(self._network, route, origin, self._ssl_context, timeout.connect)
        if origin[0] == "https":
            use_h2 = stream.alpn == "h2"
        else:
            use_h2 = self._prior_knowledge and not route.forwards
        if not use_h2:
            if route.forwards and origin[0] == "http":
                return AsyncHTTP11Connection(stream, proxy=route.proxy, engine=self._engine)
            return AsyncHTTP11Connection(stream, engine=self._engine)
        if self._task_group is None:
            await stream.aclose()
            raise RuntimeError("HTTP/2 needs the client opened as a context manager")
        conn = AsyncHTTP2Connection(stream, self._h2_settings, on_close=self._on_h2_close)
        try:
            await conn.start(self._task_group, timeout)
        except BaseException:
            with AsyncShield(1.0):
                await stream.aclose()
            raise
        return conn

    def _release(self, conn: Connection, reusable: bool) -> list[Connection]:
        with self._lock:
            to_close = self._core.release(conn, reusable, AsyncClock.now())
        self._wake()
        return to_close

    def _on_h2_close(self, conn: AsyncHTTP2Connection) -> None:
        # GOAWAY received or connection lost: no new stream goes to it; streams in
        # flight finish or fail on the connection itself.
        with self._lock:
            self._core.remove(conn)
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            self._waiters.wake_all()

    async def _close_all(self, conns: list[Connection]) -> None:
        if conns:
            with AsyncShield(2.0):
                for conn in conns:
                    await conn.aclose()

    async def aclose(self) -> None:
        """Close every connection; later requests raise ``ClientClosed``."""
        self._closed = True
        with self._lock:
            conns = self._core.remove_all()
        self._wake()
        await self._close_all(conns)
