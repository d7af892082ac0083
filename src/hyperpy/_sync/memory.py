# GENERATED from src/hyperpy/_async/memory.py by scripts/unasync.py: do not edit.
"""An in-process network: the client and the server talk through memory, not sockets.

Theory of operation
-------------------
``listen_tcp`` registers a listener under a fake address; ``connect_tcp`` routes
to a listener (the exact address, else the same port, else the network's only
listener) and queues a new connection on it for ``accept``. A connection is two
one-directional pipes (client to server, server to client). A pipe holds the
bytes its writer sent and its reader has not read yet, as a deque of chunks; at
``buffer_size`` unread bytes its writer waits for room (backpressure, like a
socket buffer). A pipe also carries what its ends did: EOF (its writer
half-closed), reader gone (its reader closed), and a reset reason.

Locking: shared state is only read and changed under a state lock (the
connection's for its pipes, the network's for listeners and faults), in blocks
that never wait, and no block takes a second lock. A caller that must wait
checks its condition under the lock, else registers an event on a wait list;
it waits outside the lock, bounded by its deadline, then checks again. Whoever
changes the state wakes the wait list under the lock; a waiter that times out
or is cancelled discards its event. In the async world the lock is a no-op
(tasks switch only at awaits, so such blocks are atomic); in the generated
blocking twin it is a real lock, so a reader thread, writer threads and a
closing thread can share one stream.

Closing follows TCP where hyperpy can tell the difference: an end closed while
bytes sent to it are still unread resets the connection (the peer's own unread
bytes are discarded, its reads raise ReadError, its writes WriteError);
otherwise the peer gets a FIN (it reads what remains, then ``b""``; its first
write after it is accepted and lost, the next fails: broken pipe). Closing
wakes every waiter on both pipes.

Faults are armed on the network and taken all together by the next connection
opened. ``cut_after(n)``: a direction delivers its first n bytes and the first
write that would pass them resets the connection (its writer gets WriteError,
the reader gets ReadError once it has read the n bytes). ``stall_after(n)``: a
direction delivers n bytes, then accepts but never delivers more.
``delay(s)``: each chunk becomes readable s seconds after it was written.
``refuse_next()``: the next connect is refused.
"""

from __future__ import annotations

import errno
import ssl
from collections import deque

from .._backends import Address, SyncClock, SyncEvent, SyncStateLock
from .._exceptions import (
    ConnectError,
    ConnectTimeout,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)
from .waitlist import SyncWaitList

_DIRECTIONS: dict[str, tuple[str, ...]] = {
    "to_client": ("to_client",),
    "to_server": ("to_server",),
    "both": ("to_client", "to_server"),
}
_FIRST_PORT = 40000  # ports handed out by listen_tcp(host, 0)
_FIRST_EPHEMERAL = 50000  # client-side ports
_LAST_PORT = 65535
_LINGER_DRAIN = 1 << 20  # close_lingering discards at most this many bytes
_RESET = "connection reset by peer"
_CUT = "connection reset by peer (cut_after fault)"
_UNACCEPTED = "connection reset by peer (the listener closed before accepting it)"


def _directions(direction: str) -> tuple[str, ...]:
    try:
        return _DIRECTIONS[direction]
    except KeyError:
        raise ValueError(
            f"direction must be 'to_client', 'to_server' or 'both', not {direction!r}"
        ) from None


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else SyncClock.now() + timeout


def _wait_time(now: float, *times: float | None) -> float | None:
    """Seconds from ``now`` to the earliest of ``times`` (None: no bound)."""
    bounds = [t for t in times if t is not None]
    return max(0.0, min(bounds) - now) if bounds else None


def _wait(
    lock: SyncStateLock, waiters: SyncWaitList, event: SyncEvent, timeout: float | None
) -> None:
    """Wait for ``event`` (registered on ``waiters``) outside the lock; always deregister."""
    try:
        event.wait(timeout)
    finally:
        with lock:
            waiters.discard(event)


class _Faults:
    """Faults armed for the next connection, per direction ("to_client", "to_server")."""

    __slots__ = ("cut", "delay", "stall")

    def __init__(self) -> None:
        self.cut: dict[str, int] = {}
        self.stall: dict[str, int] = {}
        self.delay: dict[str, float] = {}


class _Pipe:
    """One direction of a connection. Every method runs under the connection's lock."""

    __slots__ = (
        "buffer_size",
        "chunks",
        "cut_at",
        "delay",
        "due",
        "eof",
        "error",
        "offset",
        "read_total",
        "reader_closed",
        "readers",
        "size",
        "stall_at",
        "writers",
        "written_total",
    )

    def __init__(self, buffer_size: int, faults: _Faults, direction: str) -> None:
        self.buffer_size = buffer_size
        self.chunks: deque[bytes] = deque()
        self.due: deque[float] = deque()  # when each chunk becomes readable (delay fault)
        self.offset = 0  # bytes of chunks[0] already read
        self.size = 0  # unread bytes held (stalled and not yet due ones included)
        self.read_total = 0
        self.written_total = 0
        self.cut_at: int | None = faults.cut.get(direction)
        self.stall_at: int | None = faults.stall.get(direction)
        self.delay: float = faults.delay.get(direction, 0.0)
        self.eof = False  # the writer half-closed: EOF once everything is read
        self.reader_closed = False  # the reader's end is closed: writes fail
        self.error: str | None = None  # reset: reads fail once delivered bytes are read
        self.readers = SyncWaitList()  # wait for bytes, EOF or reset
        self.writers = SyncWaitList()  # wait for room or reset

    def available(self) -> int:
        """Unread bytes the reader may read, now or once due (not the stalled ones)."""
        if self.stall_at is None:
            return self.size
        return max(0, min(self.size, self.stall_at - self.read_total))

    def push(self, data: bytes) -> None:
        self.chunks.append(data)
        self.due.append(SyncClock.now() + self.delay if self.delay else 0.0)
        self.size += len(data)
        self.written_total += len(data)
        self.readers.wake_all()

    def take(self, max_bytes: int, now: float) -> bytes:
        """Up to ``max_bytes`` available bytes that are due by ``now`` (b"" if none)."""
        wanted = min(max_bytes, self.available())
        parts: list[bytes | memoryview] = []
        got = 0
        # While got < wanted <= size, some chunk is left.
        while got < wanted and self.due[0] <= now:
            head = self.chunks[0]
            start = self.offset
            end = min(len(head), start + wanted - got)
            parts.append(head if start == 0 and end == len(head) else memoryview(head)[start:end])
            got += end - start
            if end == len(head):
                self.chunks.popleft()
                self.due.popleft()
                self.offset = 0
            else:
                self.offset = end
        if not got:
            return b""
        self.size -= got
        self.read_total += got
        self.writers.wake_all()
        return b"".join(parts)  # a single whole chunk is returned as is, without a copy

    def is_readable(self, now: float) -> bool:
        if self.available() and self.due[0] <= now:
            return True
        return self.error is not None or (self.eof and not self.size)

    def clear(self) -> None:
        """Discard the unread bytes."""
        self.chunks.clear()
        self.due.clear()
        self.offset = 0
        self.size = 0

    def wake(self) -> None:
        self.readers.wake_all()
        self.writers.wake_all()


class _Connection:
    """The two pipes of a connection and the lock that guards them."""

    __slots__ = ("lock", "to_client", "to_server")

    def __init__(self, buffer_size: int, faults: _Faults) -> None:
        self.lock = SyncStateLock()
        self.to_server = _Pipe(buffer_size, faults, "to_server")
        self.to_client = _Pipe(buffer_size, faults, "to_client")

    def reset(self, reason: str, *, discard: bool) -> None:
        """Reset both directions (under the lock): writes fail, and reads fail once the
        bytes still held are read, or at once if ``discard`` drops them."""
        for pipe in (self.to_server, self.to_client):
            if pipe.error is None:
                pipe.error = reason
            if discard:
                pipe.clear()
            pipe.wake()


class MemoryStream:
    """One end of an in-memory connection (implements the backend's stream contract)."""

    __slots__ = ("_closed", "_conn", "_in", "_lock", "_out", "_peername", "_sockname")

    def __init__(
        self,
        conn: _Connection,
        incoming: _Pipe,
        outgoing: _Pipe,
        sockname: Address,
        peername: Address,
    ) -> None:
        self._conn = conn
        self._lock = conn.lock
        self._in = incoming
        self._out = outgoing
        self._sockname = sockname
        self._peername = peername
        self._closed = False

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{type(self).__name__} {self._sockname} -> {self._peername}{state}>"

    def receive(self, max_bytes: int = 65536, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` bytes, waiting for some; ``b""`` at end of stream.

        ReadTimeout when ``timeout`` passes first; ReadError after a reset (once
        the bytes delivered before it are read) or once this end is closed.
        """
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        SyncClock.checkpoint()
        deadline = _deadline(timeout)
        pipe = self._in
        while True:
            with self._lock:
                if self._closed:
                    raise ReadError("receive failed: the stream is closed")
                now = SyncClock.now()
                due: float | None = None
                if pipe.available():
                    data = pipe.take(max_bytes, now)
                    if data:
                        return data
                    due = pipe.due[0]  # delayed: the head chunk is not due yet
                elif pipe.error is not None:
                    raise ReadError(f"receive failed: {pipe.error}")
                elif pipe.eof and not pipe.size:
                    return b""
                if deadline is not None and now >= deadline:
                    raise ReadTimeout(f"no data from the peer within {timeout} s")
                event = pipe.readers.register()
            _wait(self._lock, pipe.readers, event, _wait_time(now, deadline, due))

    def send_all(self, data: bytes | bytearray | memoryview, timeout: float | None) -> None:
        """Send every byte, or raise.

        Writes what fits in the pipe and waits for room for the rest; WriteTimeout
        if ``timeout`` passes first; WriteError after a reset, once our end is
        closed, after ``send_eof``, or on the second write after the peer closed.
        """
        SyncClock.checkpoint()
        deadline = _deadline(timeout)
        view = memoryview(data).cast("B")
        pipe = self._out
        sent = 0
        while True:
            with self._lock:
                if self._closed:
                    raise WriteError("send failed: the stream is closed")
                if pipe.error is not None:
                    raise WriteError(f"send failed: {pipe.error}")
                if pipe.reader_closed:
                    # As over TCP, the first write after the peer's clean close is
                    # accepted (its bytes are lost: the peer answers with a reset),
                    # and only the next one fails. A client that sends a request on
                    # a kept-alive connection the server just closed reads EOF.
                    pipe.error = "broken pipe (the peer closed the connection)"
                    return
                if pipe.eof:
                    raise WriteError("send failed: the sending side was shut down (send_eof)")
                if sent == len(view):
                    return
                room = pipe.buffer_size - pipe.size
                if room > 0:
                    count = min(room, len(view) - sent)
                    if pipe.cut_at is not None and pipe.written_total + count > pipe.cut_at:
                        keep = pipe.cut_at - pipe.written_total
                        if keep > 0:
                            pipe.push(bytes(view[sent : sent + keep]))
                        self._conn.reset(_CUT, discard=False)
                        raise WriteError(f"send failed: {_CUT}")
                    pipe.push(bytes(view[sent : sent + count]))
                    sent += count
                    continue
                now = SyncClock.now()
                if deadline is not None and now >= deadline:
                    raise WriteTimeout(f"the peer did not take our data within {timeout} s")
                event = pipe.writers.register()
            _wait(self._lock, pipe.writers, event, _wait_time(now, deadline))

    def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_hostname: str | None,
        server_side: bool,
        timeout: float | None,
        error: type[Exception] = ConnectError,
    ) -> MemoryStream:
        """Always fails with ``error`` and closes the stream: the memory network
        carries no TLS."""
        self.close()
        raise error(
            "TLS is not available on the memory network (it carries plain bytes only):"
            " use http:// URLs; TLS is tested over real sockets"
        )

    @property
    def alpn(self) -> str | None:
        return None

    @property
    def is_tls(self) -> bool:
        return False

    @property
    def peername(self) -> Address | None:
        return self._peername

    @property
    def sockname(self) -> Address:
        return self._sockname

    def is_readable(self) -> bool:
        """True if bytes, EOF or a reset wait, i.e. a receive would not wait."""
        with self._lock:
            return self._closed or self._in.is_readable(SyncClock.now())

    def wait_readable(self, timeout: float | None) -> bool:
        """Wait until a receive would not wait (see ``is_readable``), or ``timeout``
        passes (False). What the blocking server's parker uses for this network."""
        deadline = _deadline(timeout)
        pipe = self._in
        while True:
            with self._lock:
                now = SyncClock.now()
                if self._closed or pipe.is_readable(now):
                    return True
                if deadline is not None and now >= deadline:
                    return False
                due = pipe.due[0] if pipe.due else None  # delayed bytes become due
                event = pipe.readers.register()
            _wait(self._lock, pipe.readers, event, _wait_time(now, deadline, due))

    def send_eof(self) -> None:
        """Half-close: the peer reads EOF after our last byte; we can still receive."""
        with self._lock:
            if not self._closed and not self._out.eof:
                self._out.eof = True
                self._out.readers.wake_all()

    def close(self) -> None:
        """Close at once (idempotent), waking every waiter on the connection.

        With bytes still unread on our side, the peer sees a reset; else a FIN.
        """
        self.close_now()

    def close_now(self) -> None:
        """``close`` without a checkpoint: it never waits."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            incoming, outgoing = self._in, self._out
            if incoming.size and outgoing.error is None and not outgoing.reader_closed:
                self._conn.reset(_RESET, discard=True)
            else:
                outgoing.eof = True
            incoming.reader_closed = True
            incoming.clear()
            incoming.wake()
            outgoing.wake()

    def close_lingering(self, linger: float = 2.0) -> None:
        """Half-close, discard what the peer still sends until its EOF (for up to
        ``linger`` seconds or 1 MiB), then close; never raises network errors."""
        self.send_eof()
        deadline = SyncClock.now() + linger
        drained = 0
        try:
            while drained < _LINGER_DRAIN:
                left = deadline - SyncClock.now()
                if left <= 0:
                    break
                data = self.receive(65536, left)
                if not data:
                    break
                drained += len(data)
        except (ReadError, ReadTimeout):
            pass
        finally:
            self.close()

    def _reset_unaccepted(self) -> None:
        """Reset a connection its listener closed before accepting it."""
        with self._lock:
            self._closed = True
            self._conn.reset(_UNACCEPTED, discard=True)
            self._in.reader_closed = True


class MemoryListener:
    """A listener on the memory network (implements the backend's listener contract)."""

    __slots__ = (
        "_acceptors",
        "_address",
        "_backlog",
        "_closed",
        "_connectors",
        "_network",
        "_queue",
    )

    def __init__(self, network: MemoryNetwork, address: Address, backlog: int) -> None:
        self._network = network
        self._address = address
        self._backlog = backlog
        self._closed = False
        self._queue: deque[MemoryStream] = deque()  # server ends not yet accepted
        self._acceptors = SyncWaitList()  # accept() waiting for a connection
        self._connectors = SyncWaitList()  # connect_tcp() waiting for backlog room

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{type(self).__name__} {self._address}{state}>"

    @property
    def address(self) -> Address:
        return self._address

    def accept(self) -> MemoryStream | None:
        """The server end of the next connection, waiting for one; None once closed."""
        SyncClock.checkpoint()
        lock = self._network._lock
        while True:
            with lock:
                if self._closed:
                    return None
                if self._queue:
                    self._connectors.wake_all()
                    return self._queue.popleft()
                event = self._acceptors.register()
            _wait(lock, self._acceptors, event, None)

    def close(self) -> None:
        """Stop listening (idempotent): a waiting accept returns None, and connections
        queued but never accepted are reset."""
        with self._network._lock:
            if self._closed:
                return
            self._closed = True
            if self._network._listeners.get(self._address) is self:
                del self._network._listeners[self._address]
            queued = list(self._queue)
            self._queue.clear()
            self._acceptors.wake_all()
            self._connectors.wake_all()
        for stream in queued:  # each under its own connection's lock, never two at once
            stream._reset_unaccepted()


class MemoryNetwork:
    """An in-process network: pass it as ``network=`` to the client and the server.

    ``buffer_size`` is how many bytes one direction of a connection holds unread
    before a sender waits, like a socket buffer. The fault methods arm faults
    for the next connection opened; they accumulate until a connect takes them.
    """

    def __init__(self, *, buffer_size: int = 256 * 1024) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self._buffer_size = buffer_size
        self._lock = SyncStateLock()
        self._listeners: dict[Address, MemoryListener] = {}
        self._next_port = _FIRST_PORT
        self._next_ephemeral = _FIRST_EPHEMERAL
        self._faults = _Faults()
        self._refuse_next = False
        self._opened = 0

    def listen_fd(self, fd: int, backlog: int = 1024) -> MemoryListener:
        """The memory network has no file descriptors: always OSError."""
        SyncClock.checkpoint()
        raise OSError(errno.EBADF, "the memory network has no file descriptors")

    def listen_unix(self, path: str, backlog: int = 1024) -> MemoryListener:
        """The memory network has no Unix domain sockets: always OSError."""
        SyncClock.checkpoint()
        raise OSError(errno.EAFNOSUPPORT, "the memory network has no Unix sockets")

    def connect_unix(self, path: str, timeout: float | None) -> MemoryStream:
        """The memory network has no Unix domain sockets: always ConnectError."""
        SyncClock.checkpoint()
        raise ConnectError(f"cannot connect to {path}: the memory network has no Unix sockets")

    def connect_tcp(self, host: str, port: int, timeout: float | None) -> MemoryStream:
        """Connect to the listener on ``host``:``port``; else the one on ``port``
        whatever its host; else the network's only listener. ConnectError if there
        is none; ConnectTimeout if its backlog stays full for ``timeout``."""
        SyncClock.checkpoint()
        deadline = _deadline(timeout)
        with self._lock:
            if self._refuse_next:
                self._refuse_next = False
                raise ConnectError(f"cannot connect to {host}:{port}: connection refused")
        while True:
            with self._lock:
                listener = self._route(host, port)
                if listener is None:
                    raise ConnectError(f"cannot connect to {host}:{port}: connection refused")
                if len(listener._queue) < listener._backlog:
                    return self._open(listener)
                now = SyncClock.now()
                if deadline is not None and now >= deadline:
                    raise ConnectTimeout(
                        f"connecting to {host}:{port} took longer than {timeout} s"
                        " (the listener's backlog is full)"
                    )
                waiters = listener._connectors
                event = waiters.register()
            _wait(self._lock, waiters, event, _wait_time(now, deadline))

    def listen_tcp(self, host: str, port: int, backlog: int = 1024) -> MemoryListener:
        """Listen on ``host``:``port`` (0: a free port); OSError if it is taken."""
        SyncClock.checkpoint()
        if not 0 <= port <= _LAST_PORT:
            raise OSError(errno.EINVAL, f"invalid port: {port}")
        with self._lock:
            if port == 0:
                port = self._free_port()
            elif (host, port) in self._listeners:
                raise OSError(errno.EADDRINUSE, f"address already in use: {host}:{port}")
            listener = MemoryListener(self, (host, port), max(1, backlog))
            self._listeners[(host, port)] = listener
            return listener

    def cut_after(self, n: int, *, direction: str = "to_client") -> None:
        """Next connection: ``direction`` delivers its first ``n`` bytes, then the
        write that would pass them resets the connection."""
        if n < 0:
            raise ValueError("n must not be negative")
        with self._lock:
            for name in _directions(direction):
                self._faults.cut[name] = n

    def stall_after(self, n: int, *, direction: str = "to_client") -> None:
        """Next connection: ``direction`` delivers its first ``n`` bytes, then
        accepts more (up to the buffer size) but never delivers them."""
        if n < 0:
            raise ValueError("n must not be negative")
        with self._lock:
            for name in _directions(direction):
                self._faults.stall[name] = n

    def delay(self, seconds: float, *, direction: str = "both") -> None:
        """Next connection: each chunk sent in ``direction`` becomes readable only
        ``seconds`` after it was sent (order is kept)."""
        if not seconds >= 0:
            raise ValueError("seconds must not be negative")
        with self._lock:
            for name in _directions(direction):
                self._faults.delay[name] = seconds

    def refuse_next(self) -> None:
        """The next connect raises ConnectError."""
        with self._lock:
            self._refuse_next = True

    @property
    def connections_opened(self) -> int:
        """How many connections were opened on this network so far."""
        with self._lock:
            return self._opened

    def _route(self, host: str, port: int) -> MemoryListener | None:
        """The listener a connect to ``host``:``port`` reaches (under the lock)."""
        listener = self._listeners.get((host, port))
        if listener is not None:
            return listener
        for (_, listening_port), listener in self._listeners.items():
            if listening_port == port:
                return listener
        if len(self._listeners) == 1:
            return next(iter(self._listeners.values()))
        return None

    def _free_port(self) -> int:
        """A port no listener uses (under the lock)."""
        used = {port for _, port in self._listeners}
        while self._next_port in used:
            self._next_port += 1
        if self._next_port > _LAST_PORT:
            raise OSError(errno.EADDRNOTAVAIL, "the memory network ran out of ports")
        port = self._next_port
        self._next_port += 1
        return port

    def _open(self, listener: MemoryListener) -> MemoryStream:
        """A new connection queued on ``listener``; its client end (under the lock)."""
        faults, self._faults = self._faults, _Faults()
        client_address = ("127.0.0.1", self._next_ephemeral)
        self._next_ephemeral += 1
        if self._next_ephemeral > _LAST_PORT:
            self._next_ephemeral = _FIRST_EPHEMERAL
        conn = _Connection(self._buffer_size, faults)
        client = MemoryStream(
            conn, conn.to_client, conn.to_server, client_address, listener.address
        )
        server = MemoryStream(
            conn, conn.to_server, conn.to_client, listener.address, client_address
        )
        listener._queue.append(server)
        listener._acceptors.wake_all()
        self._opened += 1
        return client
