"""When a failed request may be sent again, and after how long: the retry policy
as an immutable value.

The pool drivers of both worlds ask this policy what to do after an attempt
failed: the connection could not be opened (``increment_connect``), the server
did not process the request (``increment``), or it answered with a status worth
retrying (``is_retry_status`` then ``increment_status``). The policy answers
with the policy for the next attempt, or raises the error the caller should
see; ``sleep_time`` says how long to wait first. It never waits and never
sends.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any

from .._exceptions import ConnectionTerminated, RequestNotProcessed, TransportError

# Methods whose repetition has the effect of one request (RFC 9110 §9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

# Statuses for which a Retry-After header asks the client to come back later
# (Content Too Large, Too Many Requests, Service Unavailable): urllib3 retries
# them by default; pass them as ``retry_after_status_codes`` to do the same.
RETRY_AFTER_STATUS_CODES = frozenset({413, 429, 503})

_DELTA_SECONDS = re.compile(r"-?[0-9]+")

# After this many attempts, a request refused by connection rotation (see
# ``_is_rotation``) counts against ``total`` like any refusal: a bound for a server
# that would serve a stream per connection and refuse this request on each of them.
ROTATION_LIMIT = 100


@dataclass(frozen=True)
class RetryAttempt:
    """One failed attempt, as kept in ``Retry.history``.

    ``status`` is the response status for a retried status, else None.
    """

    method: str
    error: str
    status: int | None = None


def _check_count(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"Retry {name} must be a whole number >= 0 or None, not {value!r}")


def _check_seconds(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"Retry {name} must be a finite number of seconds >= 0, not {value!r}")
    return float(value)


def _left(count: int | None) -> bool:
    """A count allows one more retry (None: it sets no limit)."""
    return count is None or count > 0


def _less(count: int | None) -> int | None:
    return None if count is None else count - 1


@dataclass(frozen=True)
class Retry:
    """How many times, for which requests and after how long a request is sent again.

    The names and their meaning follow urllib3's ``Retry``. Each count is how
    many more retries of its kind are allowed; ``None`` means the kind is
    limited only by ``total``, and ``total=None`` means only the kinds' own
    counts limit retries. Every retry counts against ``total`` and against its
    kind:

    - ``connect``: the connection could not be opened (``ConnectError``,
      ``ConnectTimeout``). The request never reached a server, so it is
      retried whatever its method.
    - ``read``: the request was probably not processed (a kept-alive HTTP/1.1
      connection closed before any byte of a response: ``RequestNotProcessed``
      with ``certain`` false). The server may have seen it after all, so only
      ``allowed_methods`` are retried. A refusal the protocol proves (HTTP/2
      REFUSED_STREAM or GOAWAY) counts against ``total`` only, for any method;
      a graceful GOAWAY after the connection served other streams (the server
      retiring it) costs nothing, as long as a retry is left.
    - ``status``: the server answered with a status in ``status_forcelist``,
      or with one in ``retry_after_status_codes`` and a ``Retry-After``
      header (while ``respect_retry_after_header``); only ``allowed_methods``
      are retried. When no status retry is left, the caller gets the last
      response (not an error), as it would without retries.

    The defaults keep to what a client does without configuration: three
    retries in all, a probably-unprocessed idempotent request sent again at
    most once (``read=1``; urllib3's default is ``None``), connect failures
    not retried (``connect=0``; set a number or ``None`` to retry them) and no
    status retried, since both status collections are empty. Where urllib3
    retries 413, 429 and 503 with a ``Retry-After`` by default, pass
    ``retry_after_status_codes=RETRY_AFTER_STATUS_CODES``.
    ``allowed_methods=None`` allows every method.

    A request whose body was a stream that has been (partly) sent cannot be
    replayed, so it is never retried.

    Between retries the caller waits ``sleep_time(...)``: the server's
    ``Retry-After`` when respected and present (capped at ``backoff_max``, so
    a server cannot park the client for longer), else ``backoff_time()``:
    nothing before the first retry, then ``backoff_factor * 2 ** (n - 1)``
    seconds after ``n`` consecutive failures, plus up to ``backoff_jitter``
    seconds at random, at most ``backoff_max``.

    The value never changes: the ``increment`` methods return the policy for
    the next attempt, ``new`` a copy with other settings::

        retry = Retry(total=2)
        retry = retry.increment("GET", error, replayable=True)  # one attempt left
        assert retry.total == 1 and len(retry.history) == 1
    """

    total: int | None = 3
    connect: int | None = 0
    read: int | None = 1
    status: int | None = None
    backoff_factor: float = 0.0
    backoff_max: float = 120.0
    backoff_jitter: float = 0.0
    # Any collection is accepted; all are stored as frozensets (methods upper-cased).
    status_forcelist: Collection[int] = frozenset()
    retry_after_status_codes: Collection[int] = frozenset()
    allowed_methods: Collection[str] | None = IDEMPOTENT_METHODS
    respect_retry_after_header: bool = True
    history: tuple[RetryAttempt, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        for name in ("total", "connect", "read", "status"):
            _check_count(name, getattr(self, name))
        for name in ("backoff_factor", "backoff_max", "backoff_jitter"):
            object.__setattr__(self, name, _check_seconds(name, getattr(self, name)))
        if not isinstance(self.respect_retry_after_header, bool):
            raise TypeError("Retry respect_retry_after_header must be a bool")
        for name in ("status_forcelist", "retry_after_status_codes"):
            statuses: Iterable[Any] = getattr(self, name)
            if isinstance(statuses, (str, bytes)) or not all(
                isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in statuses
            ):
                raise TypeError(f"Retry {name} must be a collection of statuses (100-599)")
            object.__setattr__(self, name, frozenset(statuses))
        if self.allowed_methods is not None:
            methods: Iterable[Any] = self.allowed_methods
            if isinstance(methods, str) or not all(isinstance(m, str) for m in methods):
                raise TypeError("Retry allowed_methods must be a collection of method names")
            object.__setattr__(self, "allowed_methods", frozenset(m.upper() for m in methods))
        if not isinstance(self.history, tuple):
            object.__setattr__(self, "history", tuple(self.history))

    def new(self, **changes: Any) -> Retry:
        """A copy with some settings changed (the history is kept)."""
        return replace(self, **changes)

    @property
    def is_exhausted(self) -> bool:
        """``total`` allows no more retry (a kind's own count may be spent earlier)."""
        return not _left(self.total)

    def _method_allowed(self, method: str) -> bool:
        return self.allowed_methods is None or method.upper() in self.allowed_methods

    # -- the request was not processed ------------------------------------------------

    def increment(self, method: str, error: RequestNotProcessed, *, replayable: bool) -> Retry:
        """The policy for the next attempt after ``error``.

        Raises the error the caller should see (naming why the request was not
        sent again) when it must not be retried.
        """
        rotation = _is_rotation(error) and len(self.history) < ROTATION_LIMIT
        reason = self._refusal(method, error, replayable)
        if reason is not None:
            final = _not_retried(error, reason)
            final.__cause__ = error
            raise final
        return replace(
            self,
            total=self.total if rotation else _less(self.total),
            read=self.read if error.certain else _less(self.read),
            history=(*self.history, RetryAttempt(method, str(error))),
        )

    def _refusal(self, method: str, error: RequestNotProcessed, replayable: bool) -> str | None:
        if not replayable:
            return "its body was a stream already sent, which cannot be replayed"
        if not error.certain and not self._method_allowed(method):
            return f"{method.upper()} is not retried automatically (not idempotent)"
        if not _left(self.total) or (not error.certain and not _left(self.read)):
            return f"gave up after {len(self.history) + 1} attempts"
        return None

    # -- the connection could not be opened -------------------------------------------

    def increment_connect(self, method: str, error: TransportError) -> Retry:
        """The policy for the next attempt after the connection failed to open.

        ``error`` is the ``ConnectError`` or ``ConnectTimeout``. When no retry
        is left it is raised: as it is if the request was never retried, else
        as an error of its type that says how many attempts were made, caused
        by it.
        """
        if _left(self.total) and _left(self.connect):
            return replace(
                self,
                total=_less(self.total),
                connect=_less(self.connect),
                history=(*self.history, RetryAttempt(method, str(error))),
            )
        if not self.history:
            raise error
        message = f"{error}; not retried: gave up after {len(self.history) + 1} attempts"
        try:
            final = type(error)(message)
        except TypeError:  # an error type that needs more than a message
            raise error from None
        raise final from error

    # -- the server answered with a status worth retrying -----------------------------

    def is_retry_status(self, method: str, status: int, has_retry_after: bool) -> bool:
        """Whether a response with ``status`` should be retried (a retry being left).

        The method must be allowed, and the status either in
        ``status_forcelist`` or in ``retry_after_status_codes`` and sent with
        a ``Retry-After`` header while ``respect_retry_after_header``. The
        caller must also be able to replay the request's body.
        """
        if not self._method_allowed(method):
            return False
        wanted = status in self.status_forcelist or (
            self.respect_retry_after_header
            and has_retry_after
            and status in self.retry_after_status_codes
        )
        return wanted and _left(self.total) and _left(self.status)

    def increment_status(self, method: str, status: int) -> Retry:
        """The policy for the next attempt after a response with ``status``.

        Call it only when ``is_retry_status`` said yes: with no status retry
        left it raises ``ValueError``.
        """
        if not (_left(self.total) and _left(self.status)):
            raise ValueError(f"no retry left for a {status} response; check is_retry_status")
        return replace(
            self,
            total=_less(self.total),
            status=_less(self.status),
            history=(*self.history, RetryAttempt(method, f"HTTP {status}", status)),
        )

    # -- how long to wait -------------------------------------------------------------

    def backoff_time(self) -> float:
        """Seconds to wait before the next attempt, from the failures so far.

        Nothing after the first failure (a stale connection or a refused stream
        is best retried at once), then ``backoff_factor * 2 ** (n - 1)`` for
        ``n`` consecutive failures, plus up to ``backoff_jitter`` at random, at
        most ``backoff_max``.
        """
        failures = len(self.history)
        if failures <= 1:
            return 0.0
        try:
            delay = self.backoff_factor * 2.0 ** (failures - 1)
        except OverflowError:
            delay = math.inf
        if self.backoff_jitter:
            delay += random.random() * self.backoff_jitter
        return min(self.backoff_max, delay)

    @staticmethod
    def parse_retry_after(value: str, now: float) -> float | None:
        """Seconds to wait from a ``Retry-After`` value at unix time ``now``.

        The value is delta-seconds or an HTTP-date (RFC 9110 §10.2.3); a time
        in the past (or a negative delay) means 0, a malformed value None.
        """
        text = value.strip()
        if _DELTA_SECONDS.fullmatch(text):
            # float, not int: a server's 5000 digits must not raise (int's digit limit).
            return max(0.0, float(text))
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:  # some Python versions return None for unparseable dates
            return None
        if when.tzinfo is None:  # HTTP-dates are always GMT
            when = when.replace(tzinfo=timezone.utc)
        try:
            return max(0.0, when.timestamp() - now)
        except (OverflowError, ValueError):
            return None

    def sleep_time(self, retry_after_header: str | None, now: float) -> float:
        """Seconds to wait before the next attempt.

        The server's ``Retry-After`` (capped at ``backoff_max``) when it is
        respected, present and valid; else ``backoff_time()``. ``now`` is the
        unix time, to read an HTTP-date.
        """
        if self.respect_retry_after_header and retry_after_header is not None:
            delay = self.parse_retry_after(retry_after_header, now)
            if delay is not None:
                return min(delay, self.backoff_max)
        return self.backoff_time()


def _is_rotation(error: RequestNotProcessed) -> bool:
    """A graceful GOAWAY (NO_ERROR) from a connection that served streams below this
    one: the server retiring a connection after its quota (nginx's
    ``keepalive_requests``), not a failure. Every concurrent request past the quota is
    refused at once and goes to the next connection, where most are refused again:
    counted, 20 concurrent requests to nginx's ``keepalive_requests 3`` would run out
    of retries. So it costs no retry (while one is left: ``retries=0`` still sends
    nothing twice), and each such round served at least one request."""
    return error.certain and error.error_code == 0 and (error.last_stream_id or 0) > 0


def _not_retried(error: RequestNotProcessed, reason: str) -> TransportError:
    message = f"{error}; not retried: {reason}"
    if error.error_code is not None:
        # The HTTP/2 peer refused the stream or ended the connection: say so in the
        # terms of HTTP/2 (ConnectionTerminated carries the code and last stream).
        return ConnectionTerminated(
            message, error_code=error.error_code, last_stream_id=error.last_stream_id or 0
        )
    return RequestNotProcessed(message, certain=error.certain)
