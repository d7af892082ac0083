# GENERATED from tests/_async/conftest.py by scripts/unasync.py: do not edit.
"""Servers and clients for the HTTP/1.1 tests, written once (the blocking twin is generated).

They meet on an in-process network (``hyperpy.testing``), which runs the whole
protocol code without sockets; the TLS, loopback and interop tests use real
sockets instead.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from hyperpy import Client, Server
from hyperpy._sync import demo
from hyperpy.testing import MemoryNetwork

from .helpers import app


@pytest.fixture
def net() -> MemoryNetwork:
    """An in-process network for the test's servers and clients."""
    return MemoryNetwork()


@pytest.fixture
def server(net: MemoryNetwork) -> Iterator[Server]:
    """The test app (tests/_sync/helpers.py) on the test's memory network."""
    with Server(app, port=0, network=net) as server:
        yield server


@pytest.fixture
def demo_server(net: MemoryNetwork) -> Iterator[Server]:
    """hyperpy's own demo app, on the test's memory network."""
    with Server(demo.app, port=0, network=net) as server:
        yield server


@pytest.fixture
def tls_server(server_ssl_context: ssl.SSLContext) -> Iterator[Server]:
    """The test app over TLS, with a certificate from the session's trustme CA."""
    with Server(app, port=0, ssl=server_ssl_context) as server:
        yield server


@pytest.fixture
def client(net: MemoryNetwork) -> Iterator[Client]:
    """A client on the test's memory network."""
    with Client(timeout=5.0, network=net) as client:
        yield client
