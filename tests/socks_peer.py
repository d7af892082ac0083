"""A small SOCKS5 proxy over loopback sockets, for the integration tests.

The protocol (RFC 1928, with the username/password method of RFC 1929) is
written out here by hand, independent of the client's SOCKS library, and runs
on plain ``socket`` and ``threading`` so that the trio tests and the blocking
tests can both use it::

    with Socks5Proxy(auth=("u", "p")) as proxy:
        client.get("http://127.0.0.1:8000/x", proxy=proxy.url)
        assert proxy.connects == [("127.0.0.1", 8000)]

It offers NO AUTHENTICATION when ``auth`` is None and only USERNAME/PASSWORD
otherwise; it serves CONNECT to IPv4, IPv6 and domain-name targets, answering
"connection refused" (0x05) when the target refuses and "general failure"
(0x01) on any other error; after a successful CONNECT it relays bytes both
ways until both sides have finished sending.
"""

from __future__ import annotations

import errno
import socket
import struct

from threaded_peer import ThreadedPeer

VERSION = 0x05
AUTH_VERSION = 0x01  # of the username/password sub-negotiation (RFC 1929)

NO_AUTH = 0x00
USERNAME_PASSWORD = 0x02
NO_ACCEPTABLE = 0xFF

CMD_CONNECT = 0x01
ATYP_IPV4 = 0x01
ATYP_DOMAIN = 0x03
ATYP_IPV6 = 0x04

REP_SUCCEEDED = 0x00
REP_GENERAL_FAILURE = 0x01
REP_CONNECTION_REFUSED = 0x05
REP_COMMAND_NOT_SUPPORTED = 0x07
REP_ADDRESS_TYPE_NOT_SUPPORTED = 0x08


class _Closed(Exception):
    """The client closed or broke the protocol: drop its connection."""


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes (at most 255 here), or ``_Closed`` at EOF."""
    data = bytearray()
    while len(data) < size:  # each pass gets at least one byte or ends
        piece = sock.recv(size - len(data))
        if not piece:
            raise _Closed("connection closed inside a message")
        data += piece
    return bytes(data)


def _reply(code: int, bound: tuple[str, int] | None = None) -> bytes:
    """A reply to a request: ``code`` and the bound address (zeros when there is none)."""
    if bound is None:
        return bytes([VERSION, code, 0x00, ATYP_IPV4]) + bytes(6)
    host, port = bound
    if ":" in host:
        address = bytes([ATYP_IPV6]) + socket.inet_pton(socket.AF_INET6, host)
    else:
        address = bytes([ATYP_IPV4]) + socket.inet_pton(socket.AF_INET, host)
    return bytes([VERSION, code, 0x00]) + address + struct.pack("!H", port)


class Socks5Proxy(ThreadedPeer):
    """A SOCKS5 proxy on a loopback port, in threads.

    ``url`` is where to reach it. ``connects`` records the ``(host, port)`` of
    every CONNECT request, host as sent (a domain name or an IP address string),
    whether or not the target could be reached. ``failures`` describes every
    refused negotiation or request (no acceptable method, wrong credentials,
    unsupported command or address type, unreachable target, ...). ``errors``
    collects unexpected exceptions of its threads (not network errors). At most
    ``max_connections`` clients are served at once; more are closed at once.
    """

    _scheme = "socks5"
    _thread_name = "socks5-proxy"

    def __init__(
        self,
        auth: tuple[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        max_connections: int = 32,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(host=host, max_connections=max_connections, timeout=timeout)
        self.auth = auth
        self.connects: list[tuple[str, int]] = []
        self.failures: list[str] = []

    def _refuse(self, client: socket.socket) -> None:
        # SOCKS has no "busy" answer before the negotiation: just hang up.
        self.failures.append("too many connections")
        super()._refuse(client)

    # -- one client connection ------------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        try:
            if self._negotiate(client):
                self._request(client)
        except _Closed:
            pass

    def _negotiate(self, client: socket.socket) -> bool:
        """Method selection, then authentication if required; whether to go on."""
        version, count = _recv_exact(client, 2)
        if version != VERSION:
            self.failures.append(f"unsupported SOCKS version {version}")
            return False
        methods = _recv_exact(client, count) if count else b""
        wanted = NO_AUTH if self.auth is None else USERNAME_PASSWORD
        if wanted not in methods:
            self.failures.append(f"no acceptable method in {list(methods)}")
            client.sendall(bytes([VERSION, NO_ACCEPTABLE]))
            return False
        client.sendall(bytes([VERSION, wanted]))
        return self.auth is None or self._authenticate(client, self.auth)

    def _authenticate(self, client: socket.socket, auth: tuple[str, str]) -> bool:
        version, length = _recv_exact(client, 2)
        if version != AUTH_VERSION:
            self.failures.append(f"unsupported authentication version {version}")
            client.sendall(bytes([AUTH_VERSION, 0x01]))
            return False
        username = _recv_exact(client, length) if length else b""
        (length,) = _recv_exact(client, 1)
        password = _recv_exact(client, length) if length else b""
        if (username, password) != (auth[0].encode(), auth[1].encode()):
            self.failures.append(f"authentication failed for user {username!r}")
            client.sendall(bytes([AUTH_VERSION, 0x01]))
            return False
        client.sendall(bytes([AUTH_VERSION, 0x00]))
        return True

    def _request(self, client: socket.socket) -> None:
        version, command, _, atyp = _recv_exact(client, 4)
        if version != VERSION:
            self.failures.append(f"unsupported SOCKS version {version} in a request")
            return
        if atyp == ATYP_IPV4:
            host = socket.inet_ntop(socket.AF_INET, _recv_exact(client, 4))
        elif atyp == ATYP_IPV6:
            host = socket.inet_ntop(socket.AF_INET6, _recv_exact(client, 16))
        elif atyp == ATYP_DOMAIN:
            (length,) = _recv_exact(client, 1)
            # latin-1 keeps every byte as sent, so a test can see exactly what came.
            host = (_recv_exact(client, length) if length else b"").decode("latin-1")
        else:
            self.failures.append(f"unsupported address type {atyp}")
            client.sendall(_reply(REP_ADDRESS_TYPE_NOT_SUPPORTED))
            return
        (port,) = struct.unpack("!H", _recv_exact(client, 2))
        if command != CMD_CONNECT:
            self.failures.append(f"unsupported command {command}")
            client.sendall(_reply(REP_COMMAND_NOT_SUPPORTED))
            return
        self.connects.append((host, port))
        try:
            upstream = self._open(host, port)
        except OSError as exc:
            refused = isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED
            self.failures.append(f"connect to {host}:{port} failed: {exc}")
            client.sendall(_reply(REP_CONNECTION_REFUSED if refused else REP_GENERAL_FAILURE))
            return
        try:
            bound_host, bound_port = upstream.getsockname()[:2]
            client.sendall(_reply(REP_SUCCEEDED, (bound_host.partition("%")[0], bound_port)))
            self._relay(client, upstream)
        finally:
            self._forget(upstream)
