"""When a failed request may be sent again: the retry policy as an immutable value.

The pool drivers of both worlds ask this policy what to do after a request
failed in a way that shows the server did not process it
(``RequestNotProcessed``); the policy answers with the policy for the next
attempt, or raises the error the caller should see. It never waits and never
sends: backoff and status-based retries fit here later without changing the
drivers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .._exceptions import ConnectionTerminated, RequestNotProcessed, TransportError

# Methods whose repetition has the effect of one request (RFC 9110 §9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


@dataclass(frozen=True)
class RetryAttempt:
    """One failed attempt, as kept in ``Retry.history``."""

    method: str
    error: str


@dataclass(frozen=True)
class Retry:
    """How many times, and for which requests, a request is sent again.

    ``total`` is how many more attempts are allowed. A request the protocol
    proves unprocessed is retried whatever its method. One that is only
    probably unprocessed (``RequestNotProcessed.certain`` false: the server
    closed a kept-alive connection before any byte of a response) is retried
    only if its method is in ``allowed_methods``, and at most ``read`` times,
    since the server may have seen it after all (urllib3 calls failures after
    a request went out read errors). A request whose body was a stream that has
    been (partly) sent cannot be replayed, so it is never retried.

    The value never changes: ``increment`` returns the policy for the next
    attempt, ``new`` a copy with other settings::

        retry = Retry(total=2)
        retry = retry.increment("GET", error, replayable=True)  # one attempt left
        assert retry.total == 1 and len(retry.history) == 1
    """

    total: int = 3
    read: int = 1
    allowed_methods: frozenset[str] = IDEMPOTENT_METHODS
    history: tuple[RetryAttempt, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        for name in ("total", "read"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Retry {name} must be a whole number >= 0, not {value!r}")
        methods: Iterable[Any] = self.allowed_methods
        if isinstance(methods, str) or not all(isinstance(m, str) for m in methods):
            raise TypeError("Retry allowed_methods must be a collection of method names")
        object.__setattr__(self, "allowed_methods", frozenset(m.upper() for m in methods))

    def new(self, **changes: Any) -> Retry:
        """A copy with some settings changed (the history is kept)."""
        return replace(self, **changes)

    @property
    def is_exhausted(self) -> bool:
        """No attempt is left."""
        return self.total <= 0

    def increment(self, method: str, error: RequestNotProcessed, *, replayable: bool) -> Retry:
        """The policy for the next attempt after ``error``.

        Raises the error the caller should see (naming why the request was not
        sent again) when it must not be retried.
        """
        reason = self._refusal(method.upper(), error, replayable)
        if reason is not None:
            final = _not_retried(error, reason)
            final.__cause__ = error
            raise final
        return replace(
            self,
            total=self.total - 1,
            read=self.read if error.certain else self.read - 1,
            history=(*self.history, RetryAttempt(method, str(error))),
        )

    def _refusal(self, method: str, error: RequestNotProcessed, replayable: bool) -> str | None:
        if not replayable:
            return "its body was a stream already sent, which cannot be replayed"
        if not error.certain and method not in self.allowed_methods:
            return f"{method} is not retried automatically (not idempotent)"
        if self.is_exhausted or (not error.certain and self.read <= 0):
            return f"gave up after {len(self.history) + 1} attempts"
        return None


def _not_retried(error: RequestNotProcessed, reason: str) -> TransportError:
    message = f"{error}; not retried: {reason}"
    if error.error_code is not None:
        # The HTTP/2 peer refused the stream or ended the connection: say so in the
        # terms of HTTP/2 (ConnectionTerminated carries the code and last stream).
        return ConnectionTerminated(
            message, error_code=error.error_code, last_stream_id=error.last_stream_id or 0
        )
    return RequestNotProcessed(message, certain=error.certain)
