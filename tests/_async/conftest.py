"""Servers and clients on real sockets for the HTTP/1.1 tests (trio; sync twin generated)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest

from hyperpy import AsyncClient, AsyncServer
from hyperpy._async import demo

from .helpers import app


@pytest.fixture
async def server() -> AsyncIterator[AsyncServer]:
    """The test app (tests/_async/helpers.py) on a free port of 127.0.0.1."""
    async with AsyncServer(app, port=0) as server:
        yield server


@pytest.fixture
async def demo_server() -> AsyncIterator[AsyncServer]:
    """hyperpy's own demo app."""
    async with AsyncServer(demo.app, port=0) as server:
        yield server


@pytest.fixture
async def tls_server(server_ssl_context: ssl.SSLContext) -> AsyncIterator[AsyncServer]:
    """The test app over TLS, with a certificate from the session's trustme CA."""
    async with AsyncServer(app, port=0, ssl=server_ssl_context) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[AsyncClient]:
    async with AsyncClient(timeout=5.0) as client:
        yield client
