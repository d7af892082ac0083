# GENERATED from tests/_async/conftest.py by scripts/unasync.py: do not edit.
"""Servers and clients on real sockets for the HTTP/1.1 tests (trio; sync twin generated)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from hyperpy import Client, Server
from hyperpy._sync import demo

from .helpers import app


@pytest.fixture
def server() -> Iterator[Server]:
    """The test app (tests/_async/helpers.py) on a free port of 127.0.0.1."""
    with Server(app, port=0) as server:
        yield server


@pytest.fixture
def demo_server() -> Iterator[Server]:
    """hyperpy's own demo app."""
    with Server(demo.app, port=0) as server:
        yield server


@pytest.fixture
def tls_server(server_ssl_context: ssl.SSLContext) -> Iterator[Server]:
    """The test app over TLS, with a certificate from the session's trustme CA."""
    with Server(app, port=0, ssl=server_ssl_context) as server:
        yield server


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(timeout=5.0) as client:
        yield client
