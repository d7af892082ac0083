"""The client through real proxies over loopback: an HTTP forward proxy (absolute
form), CONNECT tunnels with TLS and HTTP/2 inside, proxy auth, the proxy
environment variables and NO_PROXY, and SOCKS5.

Written once; the blocking twin is generated.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator

import pytest
from proxy_peer import ForwardProxy
from socks_peer import Socks5Proxy

import hyperpy
from hyperpy import AsyncClient, AsyncServer, Request, Response


async def app(request: Request) -> Response:
    return Response(
        200,
        json={
            "target": request.target,
            "http_version": request.http_version,
            "headers": request.headers.multi_items(),
        },
    )


@pytest.fixture
async def server() -> AsyncIterator[AsyncServer]:
    async with AsyncServer(app, port=0) as server:
        yield server


@pytest.fixture
async def tls_server(server_ssl_context: ssl.SSLContext) -> AsyncIterator[AsyncServer]:
    async with AsyncServer(app, port=0, ssl=server_ssl_context) as server:
        yield server


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as proxy:
        yield proxy


async def test_http_goes_through_a_forward_proxy_in_absolute_form(
    server: AsyncServer, proxy: ForwardProxy
) -> None:
    async with AsyncClient(proxy=proxy.url) as client:
        for _ in range(2):
            response = await client.get(server.url + "/a?b=c")
            assert response.json()["target"] == "/a?b=c"
    assert proxy.requests == [("GET", server.url + "/a?b=c")] * 2
    assert client.connections_opened == 1  # kept alive to the proxy


async def test_https_and_http2_go_through_a_connect_tunnel(
    tls_server: AsyncServer, proxy: ForwardProxy, h2_client_ssl_context: ssl.SSLContext
) -> None:
    async with AsyncClient(proxy=proxy.url, http2=True, verify=h2_client_ssl_context) as client:
        for _ in range(3):
            response = await client.get(tls_server.url + "/secret")
            assert response.http_version == "2"
            assert response.json()["target"] == "/secret"
    assert tls_server.address is not None
    assert proxy.connects == [f"127.0.0.1:{tls_server.address[1]}"]  # one tunnel, reused


async def test_proxy_auth(
    server: AsyncServer, tls_server: AsyncServer, client_ssl_context: ssl.SSLContext
) -> None:
    with ForwardProxy(auth=("user", "p@ss")) as proxy:
        async with AsyncClient(proxy=proxy.url, verify=client_ssl_context) as client:
            assert (await client.get(server.url + "/")).status == 407
            with pytest.raises(hyperpy.ProxyError) as caught:
                await client.get(tls_server.url + "/")
            assert caught.value.status == 407
        with_auth = hyperpy.Proxy(proxy.url, auth=("user", "p@ss"))
        async with AsyncClient(proxy=with_auth, verify=client_ssl_context) as client:
            assert (await client.get(server.url + "/")).status == 200
            assert (await client.get(tls_server.url + "/")).status == 200
        # Credentials in the proxy URL, percent-encoded.
        url = proxy.url.replace("http://", "http://user:p%40ss@")
        async with AsyncClient(proxy=url) as client:
            seen = (await client.get(server.url + "/")).json()["headers"]
            # The proxy's credentials never reach the origin.
            assert all(name != "proxy-authorization" for name, _ in seen)


async def test_proxy_from_the_environment_and_no_proxy(
    server: AsyncServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with AsyncClient() as client:
        assert (await client.get(server.url + "/env")).status == 200
    assert proxy.requests == [("GET", server.url + "/env")]
    async with AsyncClient(trust_env=False) as client:
        assert (await client.get(server.url + "/direct")).status == 200
    assert server.address is not None
    for no_proxy in ("127.0.0.1", "127.0.0.0/8", f"127.0.0.1:{server.address[1]}", "*"):
        monkeypatch.setenv("NO_PROXY", no_proxy)
        async with AsyncClient() as client:
            assert (await client.get(server.url + "/bypass")).status == 200
    monkeypatch.setenv("NO_PROXY", "127.0.0.1:1, example.com")
    async with AsyncClient() as client:
        assert (await client.get(server.url + "/proxied")).status == 200
    assert [target for _, target in proxy.requests] == [
        server.url + "/env",
        server.url + "/proxied",
    ]


@pytest.mark.parametrize("auth", [None, ("user", "secret")])
async def test_socks5_proxy(
    tls_server: AsyncServer,
    h2_client_ssl_context: ssl.SSLContext,
    auth: tuple[str, str] | None,
) -> None:
    with Socks5Proxy(auth=auth) as socks:
        proxy = hyperpy.Proxy(socks.url, auth=auth)
        async with AsyncClient(proxy=proxy, http2=True, verify=h2_client_ssl_context) as client:
            response = await client.get(tls_server.url + "/via-socks")
            assert response.http_version == "2"
        assert tls_server.address is not None
        assert socks.connects == [("127.0.0.1", tls_server.address[1])]
    if auth is not None:
        with Socks5Proxy(auth=auth) as socks:
            wrong = hyperpy.Proxy(socks.url, auth=("user", "wrong"))
            async with AsyncClient(proxy=wrong, verify=h2_client_ssl_context) as client:
                with pytest.raises(hyperpy.ProxyError):
                    await client.get(tls_server.url + "/")
