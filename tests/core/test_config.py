"""Unit tests of the configuration values (``hyperpy._config``)."""

from __future__ import annotations

import math

import pytest

from hyperpy import Timeout


def test_defaults_and_overrides() -> None:
    assert Timeout() == Timeout(5.0)
    timeout = Timeout(3, read=30)
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (3.0, 30.0, 3.0, 3.0)
    none = Timeout(None, connect=1)
    assert (none.connect, none.read, none.write, none.pool) == (1.0, None, None, None)


def test_with_changes_some_limits() -> None:
    timeout = Timeout(2).with_(read=9, pool=None)
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (2.0, 9.0, 2.0, None)


def test_zero_means_no_waiting() -> None:
    assert Timeout(pool=0).pool == 0.0


@pytest.mark.parametrize("value", [-1, -0.5, math.nan, math.inf, -math.inf])
def test_out_of_range_values_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="0 or more"):
        Timeout(value)
    with pytest.raises(ValueError, match="read"):
        Timeout(read=value)


@pytest.mark.parametrize("value", ["5", True, [5]])
def test_non_numbers_are_refused(value: object) -> None:
    with pytest.raises(TypeError, match="number of seconds"):
        Timeout(value)  # type: ignore[arg-type]


def test_timeout_is_immutable_and_hashable() -> None:
    timeout = Timeout(1)
    with pytest.raises(AttributeError):
        timeout.read = 3  # type: ignore[misc]
    assert hash(timeout) == hash(Timeout(1))
    with pytest.raises(ValueError):
        timeout.with_(write=-2)
