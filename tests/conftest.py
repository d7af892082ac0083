"""Fixtures shared by every test tree: they do not depend on the async or sync world.

The TLS material comes from trustme: one throwaway CA per session, a server
certificate for 127.0.0.1/localhost/::1, and matching server and client contexts.
"""

from __future__ import annotations

import socket
import ssl

import pytest
import trustme


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_ssl_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(ctx)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


@pytest.fixture(scope="session")
def client_ssl_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def ipv6_loopback() -> str:
    """ "::1", or skip the test when IPv6 loopback is unavailable."""
    if not _ipv6_loopback_available():
        pytest.skip("IPv6 loopback (::1) unavailable")
    return "::1"


@pytest.fixture
def full_backlog_port():
    """A listening port whose accept queue is full, so new connects hang (no SYN-ACK).

    Yields the port; the test skips if the kernel still accepts connections at once.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(filler)
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            probe.connect(("127.0.0.1", port))
        except (TimeoutError, OSError):
            pass  # hangs, as wanted
        else:
            pytest.skip("the kernel accepted a connection despite a full backlog")
        finally:
            probe.close()
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


# -- HTTP/2 (tests/_async/test_http2.py, tests/interop) -------------------------


@pytest.fixture(scope="session")
def h2_client_ssl_context(ca: trustme.CA) -> ssl.SSLContext:
    """Trusts the session CA and offers ALPN h2 then http/1.1 (hyperpy never changes
    a caller's context, so HTTP/2 over TLS needs ALPN set here)."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


@pytest.fixture(scope="session")
def h1_only_server_ssl_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server context whose ALPN offers only http/1.1 (for ALPN fallback tests)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(ctx)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
