"""Servers and clients for the HTTP/1.1 tests, written once (the blocking twin is generated).

They meet on an in-process network (``hyperpy.testing``), which runs the whole
protocol code without sockets; the TLS, loopback and interop tests use real
sockets instead.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest

from hyperpy import AsyncClient, AsyncServer
from hyperpy._async import demo
from hyperpy.testing import AsyncMemoryNetwork

from .helpers import app


@pytest.fixture
def net() -> AsyncMemoryNetwork:
    """An in-process network for the test's servers and clients."""
    return AsyncMemoryNetwork()


@pytest.fixture
async def server(net: AsyncMemoryNetwork) -> AsyncIterator[AsyncServer]:
    """The test app (tests/_async/helpers.py) on the test's memory network."""
    async with AsyncServer(app, port=0, network=net) as server:
        yield server


@pytest.fixture
async def demo_server(net: AsyncMemoryNetwork) -> AsyncIterator[AsyncServer]:
    """hyperpy's own demo app, on the test's memory network."""
    async with AsyncServer(demo.app, port=0, network=net) as server:
        yield server


@pytest.fixture
async def tls_server(server_ssl_context: ssl.SSLContext) -> AsyncIterator[AsyncServer]:
    """The test app over TLS, with a certificate from the session's trustme CA."""
    async with AsyncServer(app, port=0, ssl=server_ssl_context) as server:
        yield server


@pytest.fixture
async def client(net: AsyncMemoryNetwork) -> AsyncIterator[AsyncClient]:
    """A client on the test's memory network."""
    async with AsyncClient(timeout=5.0, network=net) as client:
        yield client
