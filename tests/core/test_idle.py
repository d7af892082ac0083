"""Unit tests of the idle-connection table (``hyperpy._core.idle``)."""

from __future__ import annotations

from hyperpy._core.idle import IdleTable


def test_oldest_idle_first_and_busy_ones_never() -> None:
    table: IdleTable[str] = IdleTable()
    table.idle("a", 1.0)
    table.idle("b", 2.0)
    table.idle("c", 3.0)
    table.busy("b")  # a request started on it
    assert "b" not in table and len(table) == 2
    table.idle("a", 4.0)  # idle again after a request: now the newest
    assert table.pop_oldest() == "c"
    assert table.pop_oldest() == "a"
    assert table.pop_oldest() is None


def test_busy_on_an_unknown_key_is_harmless() -> None:
    table: IdleTable[int] = IdleTable()
    table.busy(7)
    assert len(table) == 0
