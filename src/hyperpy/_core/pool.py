"""The client connection pool as a state machine: it says which connection serves a
request, when to open one and which to close; the drivers do the IO.

HTTP/1.1 connections serve one request at a time and wait idle (LIFO, newest
first: the most likely still open) between requests. An HTTP/2 connection is
shared by any number of requests (the connection itself makes those beyond the
peer's MAX_CONCURRENT_STREAMS wait for a stream). While a connection to an
origin that may speak HTTP/2 is being opened, further requests to it wait for
the outcome instead of racing to open connections of their own.

Every operation is O(1) in the number of connections, except ``remove_all``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

C = TypeVar("C", bound=Hashable)
Origin = tuple[str, str, int]

USE = "use"
CONNECT = "connect"
WAIT = "wait"


@dataclass
class Checkout(Generic[C]):
    """What a request should do next: ``use`` conn, ``connect`` a new one, or ``wait``.

    ``close`` lists connections the driver must close (expired, or evicted to
    make room under ``max_connections``); they are already forgotten here.
    """

    action: str
    conn: C | None = None
    close: list[C] = field(default_factory=list)


@dataclass
class _OriginState(Generic[C]):
    idle: OrderedDict[C, float] = field(default_factory=OrderedDict)  # conn -> idle since
    shared: list[C] = field(default_factory=list)  # HTTP/2 connections taking requests
    connecting: int = 0
    connecting_multiplex: int = 0
    open: int = 0  # open connections of this origin: idle, busy or shared


class PoolCore(Generic[C]):
    """Bookkeeping for every origin's connections under one connection limit."""

    def __init__(
        self,
        max_connections: int | None = 100,
        max_keepalive: int | None = 20,
        keepalive_expiry: float | None = 90.0,
    ) -> None:
        self.max_connections = max_connections
        self.max_keepalive = max_keepalive
        self.keepalive_expiry = keepalive_expiry
        self._origins: dict[Origin, _OriginState[C]] = {}
        self._origin_of: dict[C, Origin] = {}
        self._connecting = 0
        # Idle HTTP/1.1 connections across origins, oldest first: expiry and eviction.
        self._idle_order: OrderedDict[C, Origin] = OrderedDict()

    @property
    def total(self) -> int:
        """Open plus opening connections."""
        return len(self._origin_of) + self._connecting

    @property
    def idle_count(self) -> int:
        return len(self._idle_order)

    def checkout(self, origin: Origin, now: float, may_multiplex: bool = False) -> Checkout[C]:
        """Decide how a new request to ``origin`` is served."""
        close = self._expire(now)
        state = self._origins.get(origin)
        if state is None:
            state = self._origins[origin] = _OriginState()
        if state.shared:
            return Checkout(USE, state.shared[-1], close)
        if state.idle:
            conn, _ = state.idle.popitem()  # newest first
            del self._idle_order[conn]
            return Checkout(USE, conn, close)
        if state.connecting_multiplex:
            # An HTTP/2 connection may be coming: its streams would serve us.
            return Checkout(WAIT, None, close)
        if self.max_connections is not None and self.total >= self.max_connections:
            if not self._idle_order:
                return Checkout(WAIT, None, close)
            victim = next(iter(self._idle_order))
            self.remove(victim)
            close.append(victim)
        state.connecting += 1
        self._connecting += 1
        if may_multiplex:
            state.connecting_multiplex += 1
        return Checkout(CONNECT, None, close)

    def connected(self, origin: Origin, conn: C, may_multiplex: bool, multiplexed: bool) -> None:
        """A connection we were told to open is open (``multiplexed``: it is HTTP/2).

        The request that opened it holds it (or one stream of it) already.
        """
        state = self._origins[origin]
        self._end_connect(state, may_multiplex)
        self._origin_of[conn] = origin
        state.open += 1
        if multiplexed:
            state.shared.append(conn)

    def connect_failed(self, origin: Origin, may_multiplex: bool) -> None:
        self._end_connect(self._origins[origin], may_multiplex)
        self._prune(origin)

    def _end_connect(self, state: _OriginState[C], may_multiplex: bool) -> None:
        state.connecting -= 1
        self._connecting -= 1
        if may_multiplex:
            state.connecting_multiplex -= 1

    def release(self, conn: C, reusable: bool, now: float) -> list[C]:
        """A request is done with ``conn``; returns connections to close."""
        origin = self._origin_of.get(conn)
        if origin is None:
            return []
        state = self._origins[origin]
        if conn in state.shared:
            if reusable:
                return []
            self.remove(conn)
            return [conn]
        if not reusable or (
            self.max_keepalive is not None and len(self._idle_order) >= self.max_keepalive
        ):
            self.remove(conn)
            return [conn]
        state.idle[conn] = now
        self._idle_order[conn] = origin
        return []

    def remove(self, conn: C) -> None:
        """Forget ``conn`` (closed, closing or unusable)."""
        origin = self._origin_of.pop(conn, None)
        if origin is None:
            return
        state = self._origins[origin]
        state.open -= 1
        if conn in state.shared:
            state.shared.remove(conn)
        if state.idle.pop(conn, None) is not None:
            del self._idle_order[conn]
        self._prune(origin)

    def remove_all(self) -> list[C]:
        """Closing the pool: forget every connection; returns them, to be closed."""
        conns = list(self._origin_of)
        self._origins.clear()
        self._origin_of.clear()
        self._idle_order.clear()
        self._connecting = 0
        return conns

    def _prune(self, origin: Origin) -> None:
        state = self._origins.get(origin)
        if state is not None and not state.open and not state.connecting:
            del self._origins[origin]

    def _expire(self, now: float) -> list[C]:
        expiry = self.keepalive_expiry
        expired: list[C] = []
        if expiry is None:
            return expired
        while self._idle_order:
            conn, origin = next(iter(self._idle_order.items()))
            if now - self._origins[origin].idle[conn] < expiry:
                break  # oldest first: the rest are younger
            self.remove(conn)
            expired.append(conn)
        return expired
