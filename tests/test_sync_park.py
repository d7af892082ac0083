"""The blocking server's parking of idle connections and its worker pool
(``hyperpy._backends._sync_park``): resumed when readable, closed or due, never lost;
at most ``max_workers`` threads."""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Iterator

import pytest

from hyperpy._backends import (
    SyncParker,
    SyncSocketNetwork,
    SyncStream,
    SyncTaskGroup,
    SyncWorkerPool,
)
from hyperpy._sync.memory import MemoryNetwork


@pytest.fixture
def group() -> Iterator[SyncTaskGroup]:
    with SyncTaskGroup() as group:
        yield group


def _pair(network: SyncSocketNetwork | MemoryNetwork) -> tuple[SyncStream, SyncStream]:
    listener = network.listen_tcp("127.0.0.1", 0)
    client = network.connect_tcp(*listener.address, 5.0)
    server = listener.accept()
    assert server is not None
    listener.close()
    return client, server


class Resumed:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.at: float | None = None
        self.thread: str | None = None

    def __call__(self) -> None:
        self.at = time.monotonic()
        self.thread = threading.current_thread().name
        self.event.set()


def _run(fn: object, *args: object) -> None:
    fn(*args)  # type: ignore[operator]


@pytest.mark.parametrize("kind", ["socket", "memory"])
def test_parked_stream_resumes_when_readable(group: SyncTaskGroup, kind: str) -> None:
    parker = SyncParker(group.start_soon)
    client, server = _pair(SyncSocketNetwork() if kind == "socket" else MemoryNetwork())
    try:
        resumed = Resumed()
        parker.park(server, time.monotonic() + 10, _run, resumed)
        time.sleep(0.1)
        assert not resumed.event.is_set()  # nothing to read: still parked
        sent = time.monotonic()
        client.send_all(b"hello", 5.0)
        assert resumed.event.wait(2.0)
        assert resumed.at is not None and resumed.at - sent < 0.5
        assert server.receive(100, 1.0) == b"hello"
    finally:
        parker.close()
        client.close()
        server.close()


@pytest.mark.parametrize("kind", ["socket", "memory"])
def test_parked_stream_resumes_at_its_deadline(group: SyncTaskGroup, kind: str) -> None:
    parker = SyncParker(group.start_soon)
    client, server = _pair(SyncSocketNetwork() if kind == "socket" else MemoryNetwork())
    try:
        resumed = Resumed()
        start = time.monotonic()
        parker.park(server, start + 0.3, _run, resumed)
        assert resumed.event.wait(2.0)
        assert resumed.at is not None and 0.25 <= resumed.at - start < 1.0
        assert not server.is_readable()
    finally:
        parker.close()
        client.close()
        server.close()


def test_closing_a_parked_stream_resumes_it(group: SyncTaskGroup) -> None:
    parker = SyncParker(group.start_soon)
    client, server = _pair(SyncSocketNetwork())
    try:
        resumed = Resumed()
        parker.park(server, None, _run, resumed)
        time.sleep(0.1)
        server.close()  # e.g. shed at the connection limit, from another thread
        assert resumed.event.wait(2.0)
        assert server.is_readable()  # a receive would not wait: the stream is closed
    finally:
        parker.close()
        client.close()


def test_closing_the_parker_resumes_everything(group: SyncTaskGroup) -> None:
    parker = SyncParker(group.start_soon)
    pairs = [_pair(SyncSocketNetwork()) for _ in range(5)]
    resumed = [Resumed() for _ in pairs]
    for (_, server), mark in zip(pairs, resumed, strict=True):
        parker.park(server, None, _run, mark)
    time.sleep(0.1)
    parker.close()
    assert all(mark.event.wait(2.0) for mark in resumed)
    late = Resumed()
    parker.park(pairs[0][1], None, _run, late)  # parked after close: resumed at once
    assert late.event.is_set()
    for client, server in pairs:
        client.close()
        server.close()


def test_many_parked_streams_each_resume_once(group: SyncTaskGroup) -> None:
    parker = SyncParker(group.start_soon)
    count = 200
    pairs = [_pair(SyncSocketNetwork()) for _ in range(count)]
    calls: list[int] = []
    lock = threading.Lock()
    done = threading.Event()

    def mark(index: int) -> None:
        with lock:
            calls.append(index)
            if len(calls) == count:
                done.set()

    try:
        for index, (_, server) in enumerate(pairs):
            parker.park(server, time.monotonic() + 0.5, _run, mark, index)
        for client, _ in pairs[::2]:
            client.send_all(b"x", 1.0)  # half readable, half due at their deadline
        assert done.wait(5.0)
        time.sleep(0.6)  # past every deadline: a readable one must not resume again
        assert sorted(calls) == list(range(count))
    finally:
        parker.close()
        for client, server in pairs:
            client.close()
            server.close()


def test_worker_pool_bounds_its_threads_and_reuses_them(group: SyncTaskGroup) -> None:
    pool = SyncWorkerPool(group.start_soon, max_workers=4)
    running = 0
    most = 0
    threads: set[int] = set()
    lock = threading.Lock()
    finished = threading.Semaphore(0)

    def work() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.get_ident())
        time.sleep(0.02)
        with lock:
            running -= 1
        finished.release()

    for _ in range(40):
        pool.start_soon(work)
    for _ in range(40):
        assert finished.acquire(timeout=5.0)
    assert most == 4
    assert len(threads) <= 4  # threads were reused, not one per job
    pool.close()


EPOLL_ONLY = pytest.mark.skipif(
    not hasattr(select, "epoll"), reason="workers wait in epoll only where there is epoll"
)


@EPOLL_ONLY
def test_inline_work_runs_on_the_worker_that_saw_it_and_due_work_is_offloaded(
    group: SyncTaskGroup,
) -> None:
    offloaded: list[str] = []

    def offload(fn: object, *args: object) -> None:
        offloaded.append(threading.current_thread().name)
        fn(*args)  # type: ignore[operator]

    parker = SyncParker(group.start_soon, 4, offload)
    (client, server), (idle_client, idle_server) = (
        _pair(SyncSocketNetwork()),
        _pair(SyncSocketNetwork()),
    )
    try:
        readable, due = Resumed(), Resumed()
        start = time.monotonic()
        parker.park(server, start + 10, None, readable)
        parker.park(idle_server, start + 0.2, None, due)
        client.send_all(b"x", 1.0)
        assert readable.event.wait(2.0)
        assert due.event.wait(2.0)
        assert due.at is not None and due.at - start >= 0.15
        # The readable one ran where it was seen, without a hand-off; only the due
        # one went through the offload starter.
        assert offloaded == [due.thread]
        assert readable.thread not in (due.thread, threading.current_thread().name)
    finally:
        parker.close()
        for stream in (client, server, idle_client, idle_server):
            stream.close()


@EPOLL_ONLY
def test_workers_stay_within_max_workers(group: SyncTaskGroup) -> None:
    parker = SyncParker(group.start_soon, 2)
    pairs = [_pair(SyncSocketNetwork()) for _ in range(6)]
    running = 0
    most = 0
    lock = threading.Lock()
    finished = threading.Semaphore(0)

    def work() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        finished.release()

    try:
        for _, server in pairs:
            parker.park(server, None, None, work)
        for client, _ in pairs:
            client.send_all(b"x", 1.0)
        for _ in pairs:
            assert finished.acquire(timeout=5.0)
        # Readable connections beyond the workers wait their turn; two did run at once.
        assert most == 2
    finally:
        parker.close()
        for client, server in pairs:
            client.close()
            server.close()
