"""Unit tests of the public retry policy's urllib3-style settings: connect and
status retries, backoff and Retry-After (``hyperpy._core.retry.Retry``); no IO."""

from __future__ import annotations

import math
import random
from email.utils import formatdate

import pytest

from hyperpy._core.retry import IDEMPOTENT_METHODS, RETRY_AFTER_STATUS_CODES, Retry, RetryAttempt
from hyperpy._exceptions import ConnectError, ConnectTimeout, ProxyError, RequestNotProcessed

NOW = 1_700_000_000.0


def stale() -> RequestNotProcessed:
    return RequestNotProcessed("the server closed the kept-alive connection", certain=False)


def proven() -> RequestNotProcessed:
    return RequestNotProcessed("stream 3 was refused by the peer", error_code=7)


# -- defaults and validation ----------------------------------------------------------


def test_defaults_keep_unconfigured_behaviour() -> None:
    retry = Retry()
    assert (retry.total, retry.connect, retry.read, retry.status) == (3, 0, 1, None)
    assert retry.backoff_factor == 0.0
    assert retry.backoff_max == 120.0
    assert retry.backoff_jitter == 0.0
    assert retry.status_forcelist == frozenset()
    assert retry.retry_after_status_codes == frozenset()
    assert retry.allowed_methods == IDEMPOTENT_METHODS
    assert retry.respect_retry_after_header is True
    # Nothing new is retried by default: connect failures and statuses are opt-in.
    with pytest.raises(ConnectError):
        retry.increment_connect("GET", ConnectError("refused"))
    for status in (413, 429, 500, 502, 503):
        assert not retry.is_retry_status("GET", status, True)
    assert retry.sleep_time(None, NOW) == 0.0


@pytest.mark.parametrize("name", ["total", "connect", "read", "status"])
@pytest.mark.parametrize("value", [-1, 1.5, True, "3"])
def test_counts_are_whole_numbers_or_none(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a whole number"):
        Retry(**{name: value})  # type: ignore[arg-type]
    assert getattr(Retry(**{name: None}), name) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["backoff_factor", "backoff_max", "backoff_jitter"])
@pytest.mark.parametrize("value", [-0.5, math.inf, math.nan, True, "1", None])
def test_seconds_are_finite_and_non_negative(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a finite number"):
        Retry(**{name: value})  # type: ignore[arg-type]


def test_seconds_are_stored_as_floats() -> None:
    retry = Retry(backoff_factor=1, backoff_max=10, backoff_jitter=0)
    assert isinstance(retry.backoff_factor, float)
    assert isinstance(retry.backoff_max, float)
    assert isinstance(retry.backoff_jitter, float)


@pytest.mark.parametrize("name", ["status_forcelist", "retry_after_status_codes"])
@pytest.mark.parametrize("value", ["503", [503, "429"], [99], [600], [True], b"\x01\xf7"])
def test_status_collections_are_validated(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=name):
        Retry(**{name: value})  # type: ignore[arg-type]


def test_status_collections_accept_any_collection() -> None:
    retry = Retry(status_forcelist=[502, 503, 503], retry_after_status_codes=(429,))
    assert retry.status_forcelist == frozenset({502, 503})
    assert retry.retry_after_status_codes == frozenset({429})


def test_respect_retry_after_header_must_be_a_bool() -> None:
    with pytest.raises(TypeError):
        Retry(respect_retry_after_header=1)  # type: ignore[arg-type]


def test_allowed_methods_none_allows_every_method() -> None:
    retry = Retry(allowed_methods=None, status_forcelist={503})
    assert retry.is_retry_status("POST", 503, False)
    assert retry.increment("PATCH", stale(), replayable=True).total == 2


def test_new_validates() -> None:
    with pytest.raises(ValueError):
        Retry().new(backoff_factor=-1)
    assert Retry().new(connect=None).connect is None


# -- connect failures -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "CUSTOM"])
def test_connect_failures_are_retried_for_any_method(method: str) -> None:
    retry = Retry(connect=None).increment_connect(method, ConnectError("refused"))
    assert retry.total == 2
    assert retry.connect is None
    assert retry.history == (RetryAttempt(method, "refused"),)


def test_connect_count_limits_connect_retries() -> None:
    retry = Retry(total=10, connect=2)
    retry = retry.increment_connect("GET", ConnectError("refused"))
    retry = retry.increment_connect("GET", ConnectTimeout("slow"))
    assert (retry.total, retry.connect) == (8, 0)
    first = ConnectTimeout("slow again")
    with pytest.raises(ConnectTimeout) as info:
        retry.increment_connect("GET", first)
    assert "not retried: gave up after 3 attempts" in str(info.value)
    assert info.value.__cause__ is first
    # Other kinds still have the rest of the total.
    assert retry.increment("GET", proven(), replayable=True).total == 7


def test_total_limits_connect_retries() -> None:
    retry = Retry(total=1, connect=None).increment_connect("GET", ConnectError("refused"))
    assert retry.is_exhausted
    with pytest.raises(ConnectError, match="gave up after 2 attempts"):
        retry.increment_connect("GET", ConnectError("refused"))


def test_total_none_defers_to_the_kind_count() -> None:
    retry = Retry(total=None, connect=1).increment_connect("GET", ConnectError("refused"))
    assert retry.total is None
    assert not retry.is_exhausted
    with pytest.raises(ConnectError):
        retry.increment_connect("GET", ConnectError("refused"))


def test_connect_failure_without_any_retry_is_raised_unchanged() -> None:
    error = ConnectError("refused")
    with pytest.raises(ConnectError) as info:
        Retry(connect=0).increment_connect("GET", error)
    assert info.value is error


def test_exhausted_connect_failure_of_an_unusual_type_is_raised_as_is() -> None:
    class Picky(ConnectError):
        def __init__(self, message: str, *, extra: int) -> None:
            super().__init__(message)
            self.extra = extra

    retry = Retry(connect=1).increment_connect("GET", ConnectError("refused"))
    error = Picky("refused", extra=1)
    with pytest.raises(Picky) as info:
        retry.increment_connect("GET", error)
    assert info.value is error


def test_exhausted_proxy_error_keeps_its_type() -> None:
    retry = Retry(connect=1).increment_connect("GET", ProxyError("no", status=502))
    with pytest.raises(ProxyError, match="gave up after 2 attempts"):
        retry.increment_connect("GET", ProxyError("no", status=502))


def test_read_none_is_limited_by_total_only() -> None:
    retry = Retry(total=3, read=None)
    for _ in range(3):
        retry = retry.increment("GET", stale(), replayable=True)
    assert retry.read is None
    assert retry.is_exhausted
    with pytest.raises(RequestNotProcessed, match="gave up after 4 attempts"):
        retry.increment("GET", stale(), replayable=True)


# -- statuses -------------------------------------------------------------------------


def test_status_in_forcelist_is_retried_for_allowed_methods() -> None:
    retry = Retry(status_forcelist={502, 503})  # status=None: limited by total only
    assert retry.is_retry_status("GET", 502, False)
    assert retry.is_retry_status("get", 503, False)
    assert not retry.is_retry_status("GET", 500, False)
    assert not retry.is_retry_status("POST", 503, False)


@pytest.mark.parametrize("status", sorted(RETRY_AFTER_STATUS_CODES))
def test_retry_after_statuses_are_retried_when_respected(status: int) -> None:
    retry = Retry(retry_after_status_codes=RETRY_AFTER_STATUS_CODES)
    assert retry.is_retry_status("GET", status, True)
    assert not retry.is_retry_status("GET", status, False)
    assert not retry.new(respect_retry_after_header=False).is_retry_status("GET", status, True)


def test_retry_after_on_other_statuses_is_not_a_reason() -> None:
    retry = Retry(retry_after_status_codes=RETRY_AFTER_STATUS_CODES)
    for status in (200, 301, 404, 500, 502):
        assert not retry.is_retry_status("GET", status, True)


def test_status_retries_spend_status_and_total() -> None:
    retry = Retry(total=5, status=2, status_forcelist={503})
    retry = retry.increment_status("GET", 503)
    assert (retry.total, retry.status) == (4, 1)
    assert retry.history[-1] == RetryAttempt("GET", "HTTP 503", 503)
    retry = retry.increment_status("GET", 503)
    assert retry.status == 0
    # Spent: the caller keeps the last response.
    assert not retry.is_retry_status("GET", 503, False)
    with pytest.raises(ValueError, match="no retry left"):
        retry.increment_status("GET", 503)


def test_total_limits_status_retries() -> None:
    retry = Retry(total=1, status_forcelist={503}).increment_status("GET", 503)
    assert not retry.is_retry_status("GET", 503, True)


# -- backoff --------------------------------------------------------------------------


def failed(retry: Retry, times: int) -> Retry:
    for _ in range(times):
        retry = retry.increment("GET", proven(), replayable=True)
    return retry


def test_no_backoff_before_the_first_retry() -> None:
    retry = Retry(total=None, backoff_factor=0.5)
    assert retry.backoff_time() == 0.0
    assert failed(retry, 1).backoff_time() == 0.0


def test_backoff_doubles_per_consecutive_failure() -> None:
    retry = Retry(total=None, backoff_factor=0.5)
    assert [failed(retry, n).backoff_time() for n in (2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0]


def test_backoff_is_capped() -> None:
    retry = Retry(total=None, backoff_factor=1, backoff_max=5)
    assert failed(retry, 10).backoff_time() == 5.0


def test_backoff_does_not_overflow() -> None:
    retry = Retry(total=None, backoff_factor=1).new(
        history=tuple(RetryAttempt("GET", "x") for _ in range(2000))
    )
    assert retry.backoff_time() == 120.0


def test_backoff_jitter_is_random_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    retry = failed(Retry(total=None, backoff_factor=1, backoff_jitter=0.5), 2)
    delays = {retry.backoff_time() for _ in range(50)}
    assert all(2.0 <= delay <= 2.5 for delay in delays)
    assert len(delays) > 1
    monkeypatch.setattr(random, "random", lambda: 1.0)
    assert retry.backoff_time() == 2.5
    assert retry.new(backoff_max=2.2).backoff_time() == 2.2


def test_no_jitter_before_the_first_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 1.0)
    assert Retry(backoff_jitter=3).backoff_time() == 0.0


# -- Retry-After ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0.0), ("120", 120.0), ("  7 ", 7.0), ("-5", 0.0), ("9" * 5000, math.inf)],
)
def test_parse_retry_after_delta_seconds(value: str, seconds: float) -> None:
    assert Retry.parse_retry_after(value, NOW) == seconds


def test_parse_retry_after_http_date() -> None:
    later = formatdate(NOW + 30, usegmt=True)
    assert Retry.parse_retry_after(later, NOW) == 30.0
    earlier = formatdate(NOW - 30, usegmt=True)
    assert Retry.parse_retry_after(earlier, NOW) == 0.0
    # An HTTP-date is GMT even when the zone is left out.
    naive = later.removesuffix(" GMT")
    assert Retry.parse_retry_after(naive, NOW) == 30.0
    # The obsolete RFC 850 and asctime forms.
    assert Retry.parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", 784111777.0) == 0.0
    assert Retry.parse_retry_after("Sun Nov  6 08:49:37 1994", 784111777.0 - 10) == 10.0


@pytest.mark.parametrize("value", ["", "soon", "1.5", "120 seconds", "0x10", "Wed, 99 Foo"])
def test_parse_retry_after_garbage(value: str) -> None:
    assert Retry.parse_retry_after(value, NOW) is None


def test_sleep_time_prefers_retry_after() -> None:
    retry = failed(Retry(total=None, backoff_factor=1), 3)
    assert retry.backoff_time() == 4.0
    assert retry.sleep_time("10", NOW) == 10.0
    assert retry.sleep_time(None, NOW) == 4.0
    assert retry.sleep_time("garbage", NOW) == 4.0  # a bad header falls back to backoff
    assert retry.new(respect_retry_after_header=False).sleep_time("10", NOW) == 4.0


def test_sleep_time_caps_retry_after() -> None:
    assert Retry().sleep_time("86400", NOW) == 120.0
    assert Retry(backoff_max=3).sleep_time(formatdate(NOW + 60, usegmt=True), NOW) == 3.0


def test_status_retry_cycle() -> None:
    """What a driver does: ask, count, wait, send again, until the answer is no."""
    retry = Retry(status=2, backoff_factor=1, status_forcelist={503})
    waits = []
    while retry.is_retry_status("GET", 503, False):
        retry = retry.increment_status("GET", 503)
        waits.append(retry.sleep_time(None, NOW))
    assert waits == [0.0, 2.0]
    assert [attempt.status for attempt in retry.history] == [503, 503]


def test_a_status_count_limits_status_retries_below_total() -> None:
    retry = Retry(total=10, status=1, status_forcelist={503}).increment_status("GET", 503)
    assert not retry.is_retry_status("GET", 503, False)
    assert retry.increment("GET", proven(), replayable=True).total == 8


def test_urllib3_retry_after_rule_on_request() -> None:
    """urllib3 retries 413, 429 and 503 sent with Retry-After even without a forcelist."""
    retry = Retry(total=2, retry_after_status_codes=RETRY_AFTER_STATUS_CODES)
    retry = retry.increment_status("GET", 429)
    assert retry.sleep_time("3", NOW) == 3.0
    assert retry.is_retry_status("GET", 503, True)
    retry = retry.increment_status("GET", 503)
    assert not retry.is_retry_status("GET", 503, True)
