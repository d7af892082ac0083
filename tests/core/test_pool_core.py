"""Unit tests of the pool state machine (``hyperpy._core.pool.PoolCore``): no IO."""

from __future__ import annotations

import pytest

from hyperpy._core.pool import CONNECT, USE, WAIT, PoolCore

A = ("http", "a.example", 80)
B = ("http", "b.example", 80)
S = ("https", "s.example", 443)


def _open(pool: PoolCore[str], origin: tuple[str, str, int], name: str, now: float = 0.0) -> str:
    """Check out a new connection ``name`` to ``origin`` (HTTP/1.1) and hold it."""
    decision = pool.checkout(origin, now)
    assert decision.action == CONNECT
    pool.connected(origin, name, may_multiplex=False, multiplexed=False)
    return name


def test_first_checkout_connects() -> None:
    pool: PoolCore[str] = PoolCore()
    decision = pool.checkout(A, 0.0)
    assert decision.action == CONNECT
    assert decision.conn is None
    assert decision.close == []
    assert pool.total == 1  # counted while opening
    pool.connected(A, "c1", may_multiplex=False, multiplexed=False)
    assert pool.total == 1
    assert pool.idle_count == 0


def test_release_then_reuse() -> None:
    pool: PoolCore[str] = PoolCore()
    _open(pool, A, "c1")
    assert pool.release("c1", reusable=True, now=1.0) == []
    assert pool.idle_count == 1
    decision = pool.checkout(A, 2.0)
    assert (decision.action, decision.conn) == (USE, "c1")
    assert pool.idle_count == 0


def test_idle_connections_are_per_origin() -> None:
    pool: PoolCore[str] = PoolCore()
    _open(pool, A, "a1")
    pool.release("a1", True, 0.0)
    assert pool.checkout(B, 0.0).action == CONNECT


def test_second_origin_while_first_is_idle() -> None:
    pool: PoolCore[str] = PoolCore()
    _open(pool, A, "a1")
    pool.release("a1", True, 0.0)
    _open(pool, B, "b1")  # connected() must find B's state
    assert pool.total == 2
    pool.release("b1", True, 0.0)
    assert pool.checkout(A, 0.0).conn == "a1"
    assert pool.checkout(B, 0.0).conn == "b1"


def test_busy_origin_survives_checkout_elsewhere() -> None:
    pool: PoolCore[str] = PoolCore()
    _open(pool, A, "a1")  # busy on A
    _open(pool, B, "b1")
    pool.release("b1", True, 0.0)
    assert pool.checkout(B, 1.0).conn == "b1"
    assert pool.release("a1", True, 1.0) == []  # A's state must still exist
    assert pool.checkout(A, 1.0).conn == "a1"


def test_removing_idle_sibling_keeps_busy_one() -> None:
    pool: PoolCore[str] = PoolCore()
    _open(pool, A, "a1")
    _open(pool, A, "a2")
    pool.release("a2", True, 0.0)
    stale = pool.checkout(A, 0.0).conn
    assert stale == "a2"
    pool.remove(stale)  # found stale by the driver
    assert pool.release("a1", True, 0.0) == []
    assert pool.checkout(A, 0.0).conn == "a1"


def test_expiry_keeps_origin_with_busy_connection() -> None:
    pool: PoolCore[str] = PoolCore(keepalive_expiry=1.0)
    _open(pool, A, "a1")
    _open(pool, A, "a2")
    pool.release("a2", True, 0.0)
    assert pool.checkout(B, 5.0).close == ["a2"]
    assert pool.release("a1", True, 5.0) == []


def test_lifo_reuse_newest_first() -> None:
    pool: PoolCore[str] = PoolCore()
    _open(pool, A, "old")
    _open(pool, A, "new")
    pool.release("old", True, 1.0)
    pool.release("new", True, 2.0)
    assert pool.checkout(A, 3.0).conn == "new"
    assert pool.checkout(A, 3.0).conn == "old"


def test_release_not_reusable_closes() -> None:
    pool: PoolCore[str] = PoolCore()
    _open(pool, A, "c1")
    assert pool.release("c1", reusable=False, now=0.0) == ["c1"]
    assert pool.total == 0
    assert pool.checkout(A, 0.0).action == CONNECT


def test_release_unknown_connection_is_ignored() -> None:
    pool: PoolCore[str] = PoolCore()
    assert pool.release("ghost", True, 0.0) == []


def test_keepalive_expiry() -> None:
    pool: PoolCore[str] = PoolCore(keepalive_expiry=10.0)
    _open(pool, A, "c1")
    pool.release("c1", True, 0.0)
    assert pool.checkout(A, 9.9).conn == "c1"  # still fresh
    pool.release("c1", True, 10.0)
    decision = pool.checkout(A, 20.0)  # idle for 10 s: expired
    assert decision.action == CONNECT
    assert decision.close == ["c1"]
    assert pool.idle_count == 0


def test_expiry_only_takes_old_ones() -> None:
    pool: PoolCore[str] = PoolCore(keepalive_expiry=10.0)
    _open(pool, A, "old")
    _open(pool, B, "young")
    pool.release("old", True, 0.0)
    pool.release("young", True, 8.0)
    decision = pool.checkout(A, 12.0)
    assert decision.close == ["old"]
    assert decision.action == CONNECT
    assert pool.checkout(B, 12.0).conn == "young"


def test_no_expiry() -> None:
    pool: PoolCore[str] = PoolCore(keepalive_expiry=None)
    _open(pool, A, "c1")
    pool.release("c1", True, 0.0)
    assert pool.checkout(A, 1e9).conn == "c1"


def test_max_keepalive() -> None:
    pool: PoolCore[str] = PoolCore(max_keepalive=1)
    _open(pool, A, "c1")
    _open(pool, A, "c2")
    assert pool.release("c1", True, 0.0) == []
    assert pool.release("c2", True, 0.0) == ["c2"]  # no room to keep it idle
    assert pool.idle_count == 1
    assert pool.total == 1


def test_max_connections_wait_then_use() -> None:
    pool: PoolCore[str] = PoolCore(max_connections=1)
    _open(pool, A, "c1")
    assert pool.checkout(A, 0.0).action == WAIT  # busy and at the limit
    assert pool.checkout(B, 0.0).action == WAIT  # any origin: the limit is global
    pool.release("c1", True, 1.0)
    decision = pool.checkout(A, 1.0)
    assert (decision.action, decision.conn) == (USE, "c1")


def test_max_connections_counts_connecting() -> None:
    pool: PoolCore[str] = PoolCore(max_connections=2)
    assert pool.checkout(A, 0.0).action == CONNECT
    assert pool.checkout(A, 0.0).action == CONNECT
    assert pool.checkout(A, 0.0).action == WAIT
    pool.connect_failed(A, may_multiplex=False)
    assert pool.total == 1
    assert pool.checkout(A, 0.0).action == CONNECT


def test_max_connections_evicts_oldest_idle() -> None:
    pool: PoolCore[str] = PoolCore(max_connections=2)
    _open(pool, A, "a1")
    _open(pool, A, "a2")
    pool.release("a1", True, 1.0)
    pool.release("a2", True, 2.0)
    decision = pool.checkout(B, 3.0)  # full, but idle ones to another origin can go
    assert decision.action == CONNECT
    assert decision.close == ["a1"]  # the oldest
    pool.connected(B, "b1", may_multiplex=False, multiplexed=False)
    assert pool.total == 2
    assert pool.checkout(A, 3.0).conn == "a2"


def test_unlimited_connections() -> None:
    pool: PoolCore[str] = PoolCore(max_connections=None)
    for i in range(500):
        _open(pool, A, f"c{i}")
    assert pool.total == 500


def test_remove_and_drain() -> None:
    pool: PoolCore[str] = PoolCore()
    _open(pool, A, "busy")
    _open(pool, B, "idle")
    pool.release("idle", True, 0.0)
    pool.remove("busy")
    pool.remove("busy")  # twice is harmless
    assert pool.total == 1
    assert sorted(pool.remove_all()) == ["idle"]
    assert pool.total == 0
    assert pool.idle_count == 0
    assert pool.checkout(A, 0.0).action == CONNECT


def test_drain_includes_busy() -> None:
    pool: PoolCore[str] = PoolCore()
    _open(pool, A, "busy")
    _open(pool, A, "idle")
    pool.release("idle", True, 0.0)
    assert sorted(pool.remove_all()) == ["busy", "idle"]


# -- multiplexed (HTTP/2-capable) origins ------------------------------------------------


def test_multiplex_candidates_wait_for_the_first_connection() -> None:
    pool: PoolCore[str] = PoolCore()
    assert pool.checkout(S, 0.0, may_multiplex=True).action == CONNECT
    # A second request waits for the outcome instead of racing to connect.
    assert pool.checkout(S, 0.0, may_multiplex=True).action == WAIT
    pool.connected(S, "h2", may_multiplex=True, multiplexed=True)
    decision = pool.checkout(S, 0.0, may_multiplex=True)
    assert (decision.action, decision.conn) == (USE, "h2")
    assert pool.checkout(S, 0.0, may_multiplex=True).conn == "h2"  # shared
    assert pool.total == 1


def test_multiplex_release_keeps_shared_connection() -> None:
    pool: PoolCore[str] = PoolCore()
    pool.checkout(S, 0.0, may_multiplex=True)
    pool.connected(S, "h2", may_multiplex=True, multiplexed=True)
    assert pool.release("h2", True, 0.0) == []
    assert pool.checkout(S, 0.0, may_multiplex=True).conn == "h2"
    assert pool.release("h2", False, 0.0) == ["h2"]
    assert pool.total == 0


def test_multiplex_candidate_that_is_http11() -> None:
    pool: PoolCore[str] = PoolCore()
    pool.checkout(S, 0.0, may_multiplex=True)
    assert pool.checkout(S, 0.0, may_multiplex=True).action == WAIT
    # ALPN picked HTTP/1.1: waiters may now open connections of their own.
    pool.connected(S, "h1", may_multiplex=True, multiplexed=False)
    assert pool.checkout(S, 0.0, may_multiplex=True).action == CONNECT


def test_multiplex_connect_failure_releases_waiters() -> None:
    pool: PoolCore[str] = PoolCore()
    pool.checkout(S, 0.0, may_multiplex=True)
    assert pool.checkout(S, 0.0, may_multiplex=True).action == WAIT
    pool.connect_failed(S, may_multiplex=True)
    assert pool.total == 0
    assert pool.checkout(S, 0.0, may_multiplex=True).action == CONNECT


def test_removed_shared_connection() -> None:
    pool: PoolCore[str] = PoolCore()
    pool.checkout(S, 0.0, may_multiplex=True)
    pool.connected(S, "h2", may_multiplex=True, multiplexed=True)
    pool.remove("h2")  # GOAWAY
    assert pool.checkout(S, 0.0, may_multiplex=True).action == CONNECT


@pytest.mark.parametrize("limit", [1, 3])
def test_never_exceeds_max_connections(limit: int) -> None:
    pool: PoolCore[str] = PoolCore(max_connections=limit)
    opened = 0
    for step in range(20):
        origin = A if step % 2 else B
        decision = pool.checkout(origin, float(step))
        for conn in decision.close:
            pool.remove(conn)
        if decision.action == CONNECT:
            opened += 1
            pool.connected(origin, f"c{opened}", False, False)
            if step % 3:
                pool.release(f"c{opened}", True, float(step))
        elif decision.action == USE:
            assert decision.conn is not None
            pool.release(decision.conn, True, float(step))
        assert pool.total <= limit
