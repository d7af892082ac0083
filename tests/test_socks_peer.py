"""The test SOCKS5 proxy (``tests/socks_peer.py``) itself, driven with hand-built
SOCKS5 bytes over raw sockets against a small echo server."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from socks_peer import Socks5Proxy

TIMEOUT = 5.0


class EchoServer:
    """Sends back whatever each connection sends, until that connection ends."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.bind((host, 0))
        self.listener.listen(8)
        self.listener.settimeout(0.05)  # the accept loop checks for stop this often
        self.port: int = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self.acceptor.start()

    def _accept_loop(self) -> None:
        with self.listener:
            while not self.stopping.is_set() and len(self.threads) < 32:
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                thread = threading.Thread(target=self._echo, args=(conn,), daemon=True)
                self.threads.append(thread)
                thread.start()

    def _echo(self, conn: socket.socket) -> None:
        conn.settimeout(TIMEOUT)
        with conn:
            try:
                for _ in range(1000):
                    data = conn.recv(65536)
                    if not data:
                        return
                    conn.sendall(data)
            except OSError:
                pass

    def close(self) -> None:
        self.stopping.set()
        self.acceptor.join(TIMEOUT)
        for thread in self.threads:
            thread.join(TIMEOUT)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        piece = sock.recv(size - len(data))
        assert piece, f"closed after {data!r}"
        data += piece
    return data


def _recv_all(sock: socket.socket) -> bytes:
    """Everything up to EOF (bounded: a test exchanges little)."""
    data = b""
    for _ in range(100):
        piece = sock.recv(65536)
        if not piece:
            return data
        data += piece
    raise AssertionError("no EOF")


def _dial(proxy: Socks5Proxy) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=TIMEOUT)


def _connect_request(host: str, port: int, *, atyp: int | None = None) -> bytes:
    if atyp == 0x03 or (atyp is None and not host.replace(".", "").isdigit() and ":" not in host):
        address = b"\x03" + bytes([len(host)]) + host.encode()
    elif ":" in host:
        address = b"\x04" + socket.inet_pton(socket.AF_INET6, host)
    else:
        address = b"\x01" + socket.inet_pton(socket.AF_INET, host)
    return b"\x05\x01\x00" + address + struct.pack("!H", port)


def _read_reply(sock: socket.socket) -> tuple[int, str, int]:
    """A request's reply: the code and the bound address."""
    version, code, reserved, atyp = _recv_exact(sock, 4)
    assert (version, reserved) == (5, 0)
    if atyp == 0x01:
        host = socket.inet_ntop(socket.AF_INET, _recv_exact(sock, 4))
    elif atyp == 0x04:
        host = socket.inet_ntop(socket.AF_INET6, _recv_exact(sock, 16))
    else:
        raise AssertionError(f"unexpected address type {atyp}")
    (port,) = struct.unpack("!H", _recv_exact(sock, 2))
    return code, host, port


def _assert_echoes(sock: socket.socket) -> None:
    sock.sendall(b"hello through socks")
    assert _recv_exact(sock, 19) == b"hello through socks"
    # A half-close travels through: the echo server ends, so does the tunnel.
    sock.shutdown(socket.SHUT_WR)
    assert _recv_all(sock) == b""


def test_connect_without_auth(echo: EchoServer) -> None:
    with Socks5Proxy() as proxy, _dial(proxy) as sock:
        assert proxy.url == f"socks5://127.0.0.1:{proxy.port}"
        sock.sendall(b"\x05\x02\x02\x00")  # offers username/password and no auth
        assert _recv_exact(sock, 2) == b"\x05\x00"
        sock.sendall(_connect_request("127.0.0.1", echo.port))
        code, host, port = _read_reply(sock)
        assert (code, host) == (0, "127.0.0.1")
        assert port > 0
        _assert_echoes(sock)
    assert proxy.connects == [("127.0.0.1", echo.port)]
    assert proxy.failures == []
    assert proxy.errors == []


def test_connect_to_a_domain_name(echo: EchoServer) -> None:
    with Socks5Proxy() as proxy, _dial(proxy) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert _recv_exact(sock, 2) == b"\x05\x00"
        sock.sendall(_connect_request("localhost", echo.port))
        assert _read_reply(sock)[0] == 0
        _assert_echoes(sock)
    assert proxy.connects == [("localhost", echo.port)]


def test_connect_to_ipv6() -> None:
    try:
        server = EchoServer("::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        with Socks5Proxy() as proxy, _dial(proxy) as sock:
            sock.sendall(b"\x05\x01\x00")
            assert _recv_exact(sock, 2) == b"\x05\x00"
            sock.sendall(_connect_request("::1", server.port))
            code, host, _ = _read_reply(sock)
            assert (code, host) == (0, "::1")
            _assert_echoes(sock)
        assert proxy.connects == [("::1", server.port)]
    finally:
        server.close()


def test_auth_success(echo: EchoServer) -> None:
    with Socks5Proxy(auth=("user", "pässword")) as proxy, _dial(proxy) as sock:
        sock.sendall(b"\x05\x02\x00\x02")
        assert _recv_exact(sock, 2) == b"\x05\x02"
        password = "pässword".encode()
        sock.sendall(b"\x01\x04user" + bytes([len(password)]) + password)
        assert _recv_exact(sock, 2) == b"\x01\x00"
        sock.sendall(_connect_request("127.0.0.1", echo.port))
        assert _read_reply(sock)[0] == 0
        _assert_echoes(sock)
    assert proxy.connects == [("127.0.0.1", echo.port)]
    assert proxy.failures == []


def test_auth_failure(echo: EchoServer) -> None:
    with Socks5Proxy(auth=("user", "secret")) as proxy, _dial(proxy) as sock:
        sock.sendall(b"\x05\x01\x02")
        assert _recv_exact(sock, 2) == b"\x05\x02"
        sock.sendall(b"\x01\x04user\x05wrong")
        assert _recv_exact(sock, 2) == b"\x01\x01"
        assert _recv_all(sock) == b""  # closed after the failure
    assert proxy.connects == []
    assert proxy.failures == ["authentication failed for user b'user'"]


def test_no_acceptable_method() -> None:
    with Socks5Proxy(auth=("user", "secret")) as proxy, _dial(proxy) as sock:
        sock.sendall(b"\x05\x01\x00")  # only no auth, which this proxy refuses
        assert _recv_exact(sock, 2) == b"\x05\xff"
        assert _recv_all(sock) == b""
    assert proxy.failures == ["no acceptable method in [0]"]


def test_refused_target(closed_port: int) -> None:
    with Socks5Proxy() as proxy, _dial(proxy) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert _recv_exact(sock, 2) == b"\x05\x00"
        sock.sendall(_connect_request("127.0.0.1", closed_port))
        assert _read_reply(sock) == (0x05, "0.0.0.0", 0)
        assert _recv_all(sock) == b""
    assert proxy.connects == [("127.0.0.1", closed_port)]
    assert len(proxy.failures) == 1
    assert proxy.failures[0].startswith(f"connect to 127.0.0.1:{closed_port} failed")


def test_unresolvable_target_is_a_general_failure() -> None:
    with Socks5Proxy() as proxy, _dial(proxy) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert _recv_exact(sock, 2) == b"\x05\x00"
        sock.sendall(_connect_request("no-such-host.invalid", 80))
        assert _read_reply(sock)[0] == 0x01
    assert proxy.connects == [("no-such-host.invalid", 80)]


def test_unsupported_command(echo: EchoServer) -> None:
    with Socks5Proxy() as proxy, _dial(proxy) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert _recv_exact(sock, 2) == b"\x05\x00"
        bind = b"\x05\x02\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", echo.port)
        sock.sendall(bind)
        assert _read_reply(sock)[0] == 0x07
    assert proxy.connects == []
    assert proxy.failures == ["unsupported command 2"]


def test_close_cuts_open_tunnels(echo: EchoServer) -> None:
    proxy = Socks5Proxy().start()
    with _dial(proxy) as sock:
        sock.sendall(b"\x05\x01\x00" + _connect_request("127.0.0.1", echo.port))
        assert _recv_exact(sock, 2) == b"\x05\x00"
        assert _read_reply(sock)[0] == 0
        proxy.close(timeout=TIMEOUT)
        assert _recv_all(sock) == b""
    assert not any(thread.is_alive() for thread in proxy._threads)
    with pytest.raises(OSError):
        socket.create_connection((proxy.host, proxy.port), timeout=TIMEOUT).close()
