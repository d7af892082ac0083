"""Which of a server's connections are idle, oldest first: the ones it sheds when
it is full, so that a crowd of silent connections never locks out active clients.

A connection is idle while it has no request in progress: before the first byte
of a head (a new connection, or one kept alive between requests), or, for
HTTP/2, with no stream open. Every operation is O(1).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")  # a connection's key (its stream): hashable by identity


class IdleTable(Generic[K]):
    """Idle connections (by key) in the order they became idle."""

    __slots__ = ("_since",)

    def __init__(self) -> None:
        self._since: OrderedDict[K, float] = OrderedDict()

    def idle(self, key: K, now: float) -> None:
        """``key`` has nothing in progress since ``now`` (it becomes the newest)."""
        self._since.pop(key, None)
        self._since[key] = now

    def busy(self, key: K) -> None:
        """``key`` has a request in progress, or is gone: never shed it."""
        self._since.pop(key, None)

    def pop_oldest(self) -> K | None:
        """The connection idle the longest, taken out of the table; None if none is."""
        if not self._since:
            return None
        key, _ = self._since.popitem(last=False)
        return key

    def __len__(self) -> int:
        return len(self._since)

    def __contains__(self, key: object) -> bool:
        return key in self._since


class ExpiryQueue(Generic[K]):
    """Keys and the deadlines they expire at, for a timeout that is the same for all
    (each deadline "now + timeout"): deadlines then only grow, so the first key in
    is the first due, and every operation is O(1). A deadline set out of order
    expires when the earlier ones have."""

    __slots__ = ("_due",)

    def __init__(self) -> None:
        self._due: OrderedDict[K, float] = OrderedDict()

    def add(self, key: K, deadline: float) -> None:
        """``key`` expires at ``deadline`` (replacing an earlier entry)."""
        self._due.pop(key, None)
        self._due[key] = deadline

    def remove(self, key: K) -> None:
        """``key`` no longer expires (absent: nothing happens)."""
        self._due.pop(key, None)

    def next_deadline(self) -> float | None:
        """The earliest deadline, or None when no key waits."""
        for deadline in self._due.values():
            return deadline
        return None

    def pop_due(self, now: float) -> list[K]:
        """The keys due by ``now``, taken out, earliest first."""
        due: list[K] = []
        while self._due:
            key, deadline = next(iter(self._due.items()))
            if deadline > now:
                break
            del self._due[key]
            due.append(key)
        return due

    def __len__(self) -> int:
        return len(self._due)
