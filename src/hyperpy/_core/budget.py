"""A rate budget (token bucket): how abuse limits that are rates stay sans-IO.

The caller passes the time (its backend's clock), so the same budget decides the
same way in both worlds and in unit tests.
"""

from __future__ import annotations


class TokenBucket:
    """Up to ``burst`` events at once, refilled at ``rate`` events per second.

    A peer within the rate never runs out; one that exceeds it for long enough
    does, whatever it does in between.
    """

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, burst: float, rate: float, now: float = 0.0) -> None:
        self.burst = float(burst)
        self.rate = float(rate)
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float, count: float = 1.0) -> bool:
        """Spend ``count`` tokens; False (spending none) if there are not enough."""
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens < count:
            return False
        self.tokens -= count
        return True
