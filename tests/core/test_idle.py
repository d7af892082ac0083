"""Unit tests of the idle-connection table (``hyperpy._core.idle``)."""

from __future__ import annotations

from hyperpy._core.idle import ExpiryQueue, IdleTable


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


def test_expiry_queue_gives_the_due_keys_in_order() -> None:
    queue: ExpiryQueue[str] = ExpiryQueue()
    assert queue.next_deadline() is None
    assert queue.pop_due(100.0) == []
    queue.add("a", 1.0)
    queue.add("b", 2.0)
    queue.add("c", 3.0)
    queue.add("a", 4.0)  # idle again: a new, later deadline, at the back
    queue.remove("b")  # busy: no longer expires
    queue.remove("missing")
    assert queue.next_deadline() == 3.0
    assert queue.pop_due(2.9) == []
    assert queue.pop_due(3.5) == ["c"]
    assert len(queue) == 1
    assert queue.pop_due(10.0) == ["a"]
    assert queue.next_deadline() is None
