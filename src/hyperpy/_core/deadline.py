"""Deadline arithmetic: one request's step limits, cut to what its total deadline leaves.

A ``Timeout`` without ``total`` is used as it is (its limits are plain
attributes, so the hot path pays nothing). With ``total``, the request carries a
``Deadline`` instead, whose limits are computed at each IO step as
``min(step limit, deadline - now)`` on the backend's clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .._config import Timeout


class StepLimits(Protocol):
    """What connections read before each IO step: seconds, or None for no limit."""

    @property
    def connect(self) -> float | None: ...

    @property
    def read(self) -> float | None: ...

    @property
    def write(self) -> float | None: ...

    @property
    def pool(self) -> float | None: ...


class Deadline:
    """The limits of one request with a total deadline, read afresh at each step."""

    __slots__ = ("_clock", "_steps", "at")

    def __init__(self, steps: Timeout, total: float, clock: Callable[[], float]) -> None:
        self._steps = steps  # the limits of each step, before the deadline cuts them
        self._clock = clock
        self.at = clock() + total

    def left(self) -> float:
        """Seconds until the deadline (0 once it has passed)."""
        return max(0.0, self.at - self._clock())

    def _cut(self, step: float | None) -> float:
        left = self.left()
        return left if step is None or step > left else step

    @property
    def connect(self) -> float | None:
        return self._cut(self._steps.connect)

    @property
    def read(self) -> float | None:
        return self._cut(self._steps.read)

    @property
    def write(self) -> float | None:
        return self._cut(self._steps.write)

    @property
    def pool(self) -> float | None:
        return self._cut(self._steps.pool)


def connection_limits(limits: StepLimits) -> Timeout:
    """The step limits a connection keeps beyond the request that opened it."""
    return limits._steps if isinstance(limits, Deadline) else limits  # type: ignore[return-value]


def step_limits(timeout: Timeout, clock: Callable[[], float]) -> StepLimits:
    """The limits one request uses: ``timeout`` itself, or a ``Deadline`` if it has a total."""
    if timeout.total is None:
        return timeout
    return Deadline(timeout, timeout.total, clock)
