"""The client connection pool as a state machine: it says which connection serves a
request, when to open one and which to close; the drivers do the IO.

HTTP/1.1 connections serve one request at a time and wait idle (LIFO, newest
first: the most likely still open) between requests. An HTTP/2 connection is
shared by up to its peer's ``MAX_CONCURRENT_STREAMS`` requests. While a
connection to an origin that may speak HTTP/2 is being opened, further requests
to it wait for the outcome instead of racing to open connections of their own.
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
    make room under ``max_connections``).
    """

    action: str
    conn: C | None = None
    close: list[C] = field(default_factory=list)


@dataclass
class _OriginState(Generic[C]):
    idle: list[tuple[C, float]] = field(default_factory=list)
    # HTTP/2 connections: each serves any number of requests; the connection itself
    # makes requests beyond the peer's MAX_CONCURRENT_STREAMS wait for a stream slot.
    shared: list[C] = field(default_factory=list)
    connecting: int = 0
    connecting_multiplex: int = 0


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
        self._busy: set[C] = set()  # HTTP/1.1 connections serving a request
        # idle HTTP/1.1 connections across origins, oldest first, for eviction
        self._idle_order: OrderedDict[C, Origin] = OrderedDict()

    @property
    def total(self) -> int:
        """Open plus opening connections."""
        return len(self._origin_of) + sum(s.connecting for s in self._origins.values())

    @property
    def idle_count(self) -> int:
        return len(self._idle_order)

    def checkout(self, origin: Origin, now: float, may_multiplex: bool = False) -> Checkout[C]:
        """Decide how a new request to ``origin`` is served."""
        state = self._origins.setdefault(origin, _OriginState())
        close = self._expire(now)
        if state.shared:
            return Checkout(USE, state.shared[-1], close)
        while state.idle:
            conn, _ = state.idle.pop()
            del self._idle_order[conn]
            self._busy.add(conn)
            return Checkout(USE, conn, close)
        if state.connecting_multiplex or state.shared:
            # An HTTP/2 connection exists or may be coming: its streams will serve us.
            return Checkout(WAIT, None, close)
        if self.max_connections is not None and self.total >= self.max_connections:
            if not self._idle_order:
                return Checkout(WAIT, None, close)
            victim, victim_origin = self._idle_order.popitem(last=False)
            self._forget_idle(victim, victim_origin)
            close.append(victim)
        state.connecting += 1
        if may_multiplex:
            state.connecting_multiplex += 1
        return Checkout(CONNECT, None, close)

    def connected(self, origin: Origin, conn: C, may_multiplex: bool, multiplexed: bool) -> None:
        """A connection we were told to open is open (``multiplexed``: it is HTTP/2).

        The request that opened it holds it (or one stream of it) already.
        """
        state = self._origins[origin]
        state.connecting -= 1
        if may_multiplex:
            state.connecting_multiplex -= 1
        self._origin_of[conn] = origin
        if multiplexed:
            state.shared.append(conn)
        else:
            self._busy.add(conn)

    def connect_failed(self, origin: Origin, may_multiplex: bool) -> None:
        state = self._origins[origin]
        state.connecting -= 1
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
        self._busy.discard(conn)
        if not reusable or (
            self.max_keepalive is not None and len(self._idle_order) >= self.max_keepalive
        ):
            self.remove(conn)
            return [conn]
        state.idle.append((conn, now))
        self._idle_order[conn] = origin
        return []

    def remove(self, conn: C) -> None:
        """Forget ``conn`` (closed or unusable)."""
        origin = self._origin_of.pop(conn, None)
        if origin is None:
            return
        state = self._origins[origin]
        if conn in state.shared:
            state.shared.remove(conn)
        if conn in self._idle_order:
            self._forget_idle(conn, origin)
        self._busy.discard(conn)
        if not state.idle and not state.shared and not state.connecting:
            del self._origins[origin]

    def drain(self) -> list[C]:
        """Closing the pool: every known connection, to be closed."""
        conns = list(self._origin_of)
        self._origins.clear()
        self._origin_of.clear()
        self._busy.clear()
        self._idle_order.clear()
        return conns

    def _forget_idle(self, conn: C, origin: Origin) -> None:
        state = self._origins[origin]
        state.idle = [(c, t) for c, t in state.idle if c is not conn]
        self._idle_order.pop(conn, None)
        self._origin_of.pop(conn, None)

    def _expire(self, now: float) -> list[C]:
        expiry = self.keepalive_expiry
        if expiry is None or not self._idle_order:
            return []
        expired: list[C] = []
        for conn, origin in list(self._idle_order.items()):
            since = next(t for c, t in self._origins[origin].idle if c is conn)
            if now - since < expiry:
                break  # oldest first: the rest are younger
            self._forget_idle(conn, origin)
            expired.append(conn)
        for origin in [
            o for o, s in self._origins.items() if not (s.idle or s.shared or s.connecting)
        ]:
            del self._origins[origin]
        return expired
