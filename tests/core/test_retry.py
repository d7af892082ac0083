"""Unit tests of the retry policy (``hyperpy._core.retry.Retry``): no IO."""

from __future__ import annotations

import pytest

from hyperpy import ConnectionTerminated, RequestNotProcessed
from hyperpy._core.retry import IDEMPOTENT_METHODS, ROTATION_LIMIT, Retry

REFUSED = 7  # REFUSED_STREAM


def proven(error_code: int | None = REFUSED, last_stream_id: int = 0) -> RequestNotProcessed:
    """What an HTTP/2 peer's GOAWAY or REFUSED_STREAM proves."""
    return RequestNotProcessed(
        "stream 3 was refused by the peer", error_code=error_code, last_stream_id=last_stream_id
    )


def stale() -> RequestNotProcessed:
    """What a kept-alive HTTP/1.1 connection closed before any response byte suggests."""
    return RequestNotProcessed("the server closed the kept-alive connection", certain=False)


def test_defaults() -> None:
    retry = Retry()
    assert retry.total == 3
    assert retry.read == 1
    assert retry.allowed_methods == IDEMPOTENT_METHODS
    assert retry.history == ()
    assert not retry.is_exhausted


def test_increment_returns_a_new_value_and_keeps_history() -> None:
    retry = Retry(total=2)
    first = retry.increment("GET", stale(), replayable=True)
    assert retry.total == 2  # the original never changes
    assert first.total == 1
    assert first.read == 0
    assert [attempt.method for attempt in first.history] == ["GET"]
    assert "kept-alive" in first.history[0].error
    second = first.increment("GET", proven(), replayable=True)
    assert second.total == 0
    assert second.is_exhausted
    assert len(second.history) == 2


def test_exhausted_proven_refusal_raises_connection_terminated() -> None:
    retry = Retry(total=1).increment("POST", proven(), replayable=True)
    with pytest.raises(ConnectionTerminated) as info:
        retry.increment("POST", proven(error_code=0, last_stream_id=1), replayable=True)
    assert "not retried" in str(info.value)
    assert "gave up after 2 attempts" in str(info.value)
    assert info.value.error_code == 0
    assert info.value.last_stream_id == 1


def test_a_retired_connection_costs_no_retry_while_one_is_left() -> None:
    # nginx's keepalive_requests: GOAWAY(NO_ERROR) above streams it served.
    rotated = proven(error_code=0, last_stream_id=5)
    retry = Retry(total=1)
    for _ in range(10):
        retry = retry.increment("POST", rotated, replayable=True)
    assert retry.total == 1
    assert len(retry.history) == 10
    # Not a rotation: a GOAWAY before any stream was served, or an error code.
    assert Retry(total=1).increment("GET", proven(0, 0), replayable=True).total == 0
    assert Retry(total=1).increment("GET", proven(2, 5), replayable=True).total == 0
    with pytest.raises(ConnectionTerminated):  # retries=0 still sends nothing twice
        Retry(total=0).increment("GET", rotated, replayable=True)


def test_rotation_counts_again_past_its_limit() -> None:
    retry = Retry(total=1)
    rotated = proven(error_code=0, last_stream_id=5)
    for _ in range(ROTATION_LIMIT):
        retry = retry.increment("GET", rotated, replayable=True)
    assert retry.total == 1
    assert retry.increment("GET", rotated, replayable=True).total == 0


def test_exhausted_stale_connection_raises_request_not_processed() -> None:
    with pytest.raises(RequestNotProcessed) as info:
        Retry(total=0).increment("GET", stale(), replayable=True)
    assert not info.value.certain
    assert "not retried" in str(info.value)
    assert isinstance(info.value.__cause__, RequestNotProcessed)


def test_uncertain_failures_have_their_own_smaller_budget() -> None:
    """A server that drops the connection on seeing a request may have processed
    it: by default it is sent at most twice, however large ``total`` is."""
    retry = Retry(total=10).increment("GET", stale(), replayable=True)
    with pytest.raises(RequestNotProcessed, match="gave up after 2 attempts"):
        retry.increment("GET", stale(), replayable=True)
    # Proven refusals still have the rest of the total.
    assert retry.increment("GET", proven(), replayable=True).total == 8
    assert Retry(read=3).increment("GET", stale(), replayable=True).read == 2


def test_proven_refusal_is_retried_for_any_method() -> None:
    for method in ("POST", "PATCH", "GET", "CUSTOM"):
        assert Retry().increment(method, proven(), replayable=True).total == 2


@pytest.mark.parametrize("method", ["POST", "PATCH", "CONNECT", "post"])
def test_uncertain_failure_is_not_retried_for_non_idempotent_methods(method: str) -> None:
    with pytest.raises(RequestNotProcessed) as info:
        Retry().increment(method, stale(), replayable=True)
    assert f"{method.upper()} is not retried automatically" in str(info.value)


@pytest.mark.parametrize("method", sorted(IDEMPOTENT_METHODS))
def test_uncertain_failure_is_retried_for_idempotent_methods(method: str) -> None:
    assert Retry().increment(method.lower(), stale(), replayable=True).total == 2


def test_a_consumed_body_stream_is_never_replayed() -> None:
    with pytest.raises(ConnectionTerminated, match="cannot be replayed"):
        Retry().increment("GET", proven(), replayable=False)
    with pytest.raises(RequestNotProcessed, match="cannot be replayed"):
        Retry().increment("GET", stale(), replayable=False)


def test_allowed_methods_are_configurable() -> None:
    retry = Retry(read=2, allowed_methods=["get", "post"])
    assert retry.allowed_methods == frozenset({"GET", "POST"})
    assert retry.increment("POST", stale(), replayable=True).total == 2
    with pytest.raises(RequestNotProcessed):
        retry.increment("PUT", stale(), replayable=True)


def test_new_copies_with_changes() -> None:
    retry = Retry(total=5).increment("GET", stale(), replayable=True)
    changed = retry.new(total=1)
    assert changed.total == 1
    assert changed.history == retry.history
    assert changed.allowed_methods == retry.allowed_methods


@pytest.mark.parametrize("value", [-1, 1.5, True, "3"])
def test_counts_are_validated(value: object) -> None:
    with pytest.raises(ValueError, match="total must be a whole number"):
        Retry(total=value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="read must be a whole number"):
        Retry(read=value)  # type: ignore[arg-type]


def test_allowed_methods_must_be_names() -> None:
    with pytest.raises(TypeError):
        Retry(allowed_methods="GET")  # type: ignore[arg-type]
