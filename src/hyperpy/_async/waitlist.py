"""Wake-ups for tasks waiting on shared state."""

from __future__ import annotations

from .._backends import AsyncEvent


class AsyncWaitList:
    """Waiters on a condition over shared state.

    Under the owner's state lock: check the condition and, if it does not hold,
    ``register()`` an event; outside it, wait on that event. Whoever changes the
    state calls ``wake_all()`` under the same lock. Each waiter has its own
    event, so no wake-up is lost and none is stolen by another waiter.
    """

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[AsyncEvent] = []

    def register(self) -> AsyncEvent:
        event = AsyncEvent()
        self._waiters.append(event)
        return event

    def discard(self, event: AsyncEvent) -> None:
        if event in self._waiters:
            self._waiters.remove(event)

    def wake_all(self) -> None:
        waiters, self._waiters = self._waiters, []
        for event in waiters:
            event.set()
