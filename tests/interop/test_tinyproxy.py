"""The client through tinyproxy, a real forward proxy nobody here wrote: plain HTTP
in absolute form, and HTTPS with HTTP/2 inside a CONNECT tunnel, in both worlds.

Skipped when tinyproxy is missing outside CI; under CI a missing binary fails.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trio
from peers import interop
from tinyproxy_peer import tinyproxy

from hyperpy import AsyncClient, AsyncServer, Client, Request, Response, Server

# What the client speaks with tinyproxy itself: HTTP/1.1, absolute-form requests and
# CONNECT (the HTTP/2 inside the tunnel is spoken with hyperpy's own server).
PROXY_CELL = ("tinyproxy", "HTTP/1.1")


async def async_app(request: Request) -> Response:
    return Response(200, json={"target": request.target, "version": request.http_version})


def sync_app(request: Request) -> Response:
    return Response(200, json={"target": request.target, "version": request.http_version})


@pytest.fixture
def proxy() -> Iterator[str]:
    with tinyproxy() as url:
        yield url


@interop(*PROXY_CELL, world="sync", role="client")
def test_blocking_client_through_tinyproxy(
    proxy: str, server_ssl_context: ssl.SSLContext, h2_client_ssl_context: ssl.SSLContext
) -> None:
    with (
        Server(sync_app, port=0) as plain,
        Server(sync_app, port=0, ssl=server_ssl_context) as tls,
        Client(proxy=proxy, http2=True, verify=h2_client_ssl_context) as client,
    ):
        response = client.get(plain.url + "/plain?x=1")
        assert response.json() == {"target": "/plain?x=1", "version": "1.1"}
        assert "tinyproxy" in response.headers.get("via", "")
        for _ in range(3):
            response = client.get(tls.url + "/tunnel")
            assert response.json() == {"target": "/tunnel", "version": "2"}
        assert client.connections_opened == 2  # one to the proxy, one tunnel


@interop(*PROXY_CELL, world="async", role="client")
async def test_trio_client_through_tinyproxy(
    proxy: str, server_ssl_context: ssl.SSLContext, h2_client_ssl_context: ssl.SSLContext
) -> None:
    async with (
        AsyncServer(async_app, port=0) as plain,
        AsyncServer(async_app, port=0, ssl=server_ssl_context) as tls,
        AsyncClient(proxy=proxy, http2=True, verify=h2_client_ssl_context) as client,
    ):
        with trio.fail_after(20):
            response = await client.get(plain.url + "/plain")
            assert response.json() == {"target": "/plain", "version": "1.1"}
            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(client.get, tls.url + "/tunnel")
        assert client.connections_opened == 2
