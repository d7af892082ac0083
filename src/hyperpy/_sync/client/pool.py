# GENERATED from src/hyperpy/_async/client/pool.py by scripts/unasync.py: do not edit.
"""The connection pool driver: carries out what ``_core.pool.PoolCore`` decides."""

from __future__ import annotations

import ssl
from typing import Union

from ..._backends import (
    SyncClock,
    SyncEvent,
    SyncNetwork,
    SyncShield,
    SyncStateLock,
    SyncTaskGroup,
)
from ..._config import H2Settings
from ..._core.deadline import StepLimits
from ..._core.pool import CONNECT, USE, Origin, PoolCore
from ..._exceptions import ClientClosed, PoolTimeout
from ..._models import Request, Response
from ..waitlist import SyncWaitList
from .connect import Route, open_stream
from .http2 import SyncHTTP2Connection
from .http11 import SyncHTTP11Connection

Connection = Union[SyncHTTP11Connection, SyncHTTP2Connection]


class SyncConnectionPool:
    """Opens, shares, reuses and closes a client's connections."""

    def __init__(
        self,
        *,
        network: SyncNetwork,
        ssl_context: ssl.SSLContext | None,
        http1: bool,
        http2: bool,
        http2_prior_knowledge: bool,
        h2_settings: H2Settings,
        max_connections: int | None,
        max_keepalive: int | None,
        keepalive_expiry: float | None,
        task_group: SyncTaskGroup | None,
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
        self._lock = SyncStateLock()
        self._waiters = SyncWaitList()  # requests waiting for a connection
        self._task_group = task_group
        self._closed = False
        self.connections_opened = 0

    def _may_multiplex(self, origin: Origin) -> bool:
        if origin[0] == "https":
            return self._http2
        return self._prior_knowledge and not self._route.forwards

    def handle_request(self, request: Request, timeout: StepLimits) -> Response:
        """Send ``request`` over a pooled connection; return once the head arrived."""
        origin = self._route.pool_origin(request.url.origin)
        conn = self._acquire(origin, self._may_multiplex(origin), timeout)
        # RequestNotProcessed goes up to the client, whose one retry policy per
        # request decides whether to send it again (on another connection: this
        # one was released as not reusable).
        return conn.handle_request(request, timeout, self._release)

    def _acquire(self, origin: Origin, may_multiplex: bool, timeout: StepLimits) -> Connection:
        deadline = None if timeout.pool is None else SyncClock.now() + timeout.pool
        while True:
            if self._closed:
                raise ClientClosed("the client was closed")
            waiter: SyncEvent | None = None
            with self._lock:
                decision = self._core.checkout(origin, SyncClock.now(), may_multiplex)
                if decision.action not in (USE, CONNECT):
                    waiter = self._waiters.register()
            self._close_all(decision.close)
            if decision.action == USE:
                conn = decision.conn
                assert conn is not None
                if not conn.multiplexed and conn.is_stale():
                    with self._lock:
                        self._core.remove(conn)
                    self._wake()
                    self._close_all([conn])
                    continue
                return conn
            if decision.action == CONNECT:
                return self._connect(origin, may_multiplex, timeout)
            assert waiter is not None
            remaining = None if deadline is None else deadline - SyncClock.now()
            try:
                if (remaining is not None and remaining <= 0) or not waiter.wait(remaining):
                    raise PoolTimeout(f"no connection to {origin[1]} became free in time")
            finally:
                with self._lock:
                    self._waiters.discard(waiter)

    def _connect(self, origin: Origin, may_multiplex: bool, timeout: StepLimits) -> Connection:
        try:
            conn = self._open(origin, timeout)
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

    def _open(self, origin: Origin, timeout: StepLimits) -> Connection:
        route = self._route
        stream = open_stream(self._network, route, origin, self._ssl_context, timeout.connect)
        if origin[0] == "https":
            use_h2 = stream.alpn == "h2"
        else:
            use_h2 = self._prior_knowledge and not route.forwards
        if not use_h2:
            if route.forwards and origin[0] == "http":
                return SyncHTTP11Connection(stream, proxy=route.proxy, engine=self._engine)
            return SyncHTTP11Connection(stream, engine=self._engine)
        if self._task_group is None:
            stream.close()
            raise RuntimeError("HTTP/2 needs the client opened as a context manager")
        conn = SyncHTTP2Connection(stream, self._h2_settings, on_close=self._on_h2_close)
        try:
            conn.start(self._task_group, timeout)
        except BaseException:
            with SyncShield(1.0):
                stream.close()
            raise
        return conn

    def _release(self, conn: Connection, reusable: bool) -> list[Connection]:
        with self._lock:
            to_close = self._core.release(conn, reusable, SyncClock.now())
        self._wake()
        return to_close

    def _on_h2_close(self, conn: SyncHTTP2Connection) -> None:
        # GOAWAY received or connection lost: no new stream goes to it; streams in
        # flight finish or fail on the connection itself.
        with self._lock:
            self._core.remove(conn)
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            self._waiters.wake_all()

    def _close_all(self, conns: list[Connection]) -> None:
        if conns:
            with SyncShield(2.0):
                for conn in conns:
                    conn.close()

    def close(self) -> None:
        """Close every connection; later requests raise ``ClientClosed``."""
        self._closed = True
        with self._lock:
            conns = self._core.remove_all()
        self._wake()
        self._close_all(conns)
