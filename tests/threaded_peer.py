"""The machinery shared by the threaded loopback peers of the tests (``proxy_peer``,
``socks_peer``): a listening socket, an accept thread, a thread per client, a clean
shutdown, and a byte relay for tunnels.

Plain ``socket`` and ``threading``, so that the trio tests and the blocking tests
can both use the peers (they run beside the code under test, never inside its event
loop). A subclass implements ``_serve`` for one client connection::

    class Echo(ThreadedPeer):
        _scheme = "tcp"
        _thread_name = "echo"

        def _serve(self, client: socket.socket) -> None:
            while data := client.recv(CHUNK):
                client.sendall(data)
"""

from __future__ import annotations

import abc
import selectors
import socket
import threading
import time
from types import TracebackType
from typing import TypeVar

CHUNK = 64 * 1024

_Peer = TypeVar("_Peer", bound="ThreadedPeer")


class ThreadedPeer(abc.ABC):
    """A server on a loopback port: one thread accepts, one thread serves each client.

    ``url`` is where to reach it (``_scheme`` names its scheme); ``errors``
    collects unexpected exceptions of its threads (not network errors), for a
    test to assert on. At most ``max_connections`` clients are served at once;
    more are handed to ``_refuse``. Every socket blocks for at most ``timeout``
    seconds, and a relay ends after ``timeout`` seconds without traffic.
    """

    _scheme: str = "tcp"
    _thread_name: str = "threaded-peer"  # threads are named "<this>-<port>[-conn]"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        max_connections: int = 32,
        timeout: float = 10.0,
    ) -> None:
        self.timeout = timeout
        self.errors: list[BaseException] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)  # the accept loop checks for stop this often
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"{self._thread_name}-{self.port}", daemon=True
        )
        self._started = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self._scheme}://{host}:{self.port}"

    # -- lifetime -------------------------------------------------------------------------

    def start(self: _Peer) -> _Peer:
        if not self._started:
            self._started = True
            self._acceptor.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, cut every connection and wait (up to ``timeout``) for the threads."""
        # One deadline for all the joins, so that ``timeout`` bounds the whole call.
        deadline = time.monotonic() + timeout
        self._stopping.set()
        if self._started:
            self._acceptor.join(timeout)
        else:
            self._listener.close()
        with self._lock:
            # Only shut down here: each thread closes its own sockets, so a descriptor
            # is never closed twice (it may already belong to a new socket).
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self: _Peer) -> _Peer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- connections ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    client, _ = self._listener.accept()
                except (TimeoutError, BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return
                # Before ``_refuse`` too: an answer to a client that does not read
                # must not hold up the accept loop for long.
                client.settimeout(self.timeout)
                if not self._slots.acquire(blocking=False):
                    self._refuse(client)
                    continue
                thread = threading.Thread(
                    target=self._run,
                    args=(client,),
                    name=f"{self._thread_name}-{self.port}-conn",
                    daemon=True,
                )
                with self._lock:
                    self._threads = [t for t in self._threads if t.is_alive()]
                    self._threads.append(thread)
                    self._sockets.add(client)
                thread.start()
        finally:
            self._listener.close()

    def _run(self, client: socket.socket) -> None:
        """A client's thread: ``_serve``, then release its socket and its slot."""
        try:
            self._serve(client)
        except OSError:
            pass  # the network's doing (a reset, a timeout, ``close``), not a bug
        except Exception as exc:
            self.errors.append(exc)
        finally:
            self._forget(client)
            self._slots.release()

    @abc.abstractmethod
    def _serve(self, client: socket.socket) -> None:
        """Serve one client connection, until done; it is closed afterwards."""

    def _refuse(self, client: socket.socket) -> None:
        """Turn away a client beyond ``max_connections``: by default just hang up."""
        client.close()

    def _open(self, host: str, port: int) -> socket.socket:
        """A connection to ``host``, tracked so that ``close`` can cut it.

        Raises ``OSError`` when it cannot connect, or when the peer is stopping.
        """
        sock = socket.create_connection((host, port), timeout=self.timeout)
        with self._lock:
            # ``close`` may have shut down the tracked sockets already: one that
            # is tracked only now would never be cut.
            if self._stopping.is_set():
                sock.close()
                raise ConnectionAbortedError("the proxy is stopping")
            self._sockets.add(sock)
        return sock

    def _forget(self, sock: socket.socket) -> None:
        """Close a socket of ``_open`` (or a client's) and stop tracking it."""
        with self._lock:
            self._sockets.discard(sock)
        sock.close()

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        """Copy bytes both ways until both sides have finished sending, the
        connection has been idle for ``timeout`` seconds, or the peer stops."""
        with selectors.DefaultSelector() as selector:
            selector.register(a, selectors.EVENT_READ, b)
            selector.register(b, selectors.EVENT_READ, a)
            open_sides = 2
            last_activity = time.monotonic()
            # Short selects, so that a stop or the idle limit is noticed soon.
            while open_sides and not self._stopping.is_set():
                if time.monotonic() - last_activity > self.timeout:
                    return
                for key, _ in selector.select(timeout=0.1):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    target: socket.socket = key.data
                    last_activity = time.monotonic()
                    data = source.recv(CHUNK)
                    if data:
                        target.sendall(data)
                        continue
                    # One side finished sending: pass the end on, keep the other way open.
                    selector.unregister(source)
                    open_sides -= 1
                    try:
                        target.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
