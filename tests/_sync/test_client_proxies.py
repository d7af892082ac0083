# GENERATED from tests/_async/test_client_proxies.py by scripts/unasync.py: do not edit.
"""The client through real proxies over loopback: an HTTP forward proxy (absolute
form), CONNECT tunnels with TLS and HTTP/2 inside, proxy auth, the proxy
environment variables and NO_PROXY, and SOCKS5.

Written once; the blocking twin is generated.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
from proxy_peer import ForwardProxy
from socks_peer import Socks5Proxy

import hyperpy
from hyperpy import Client, Request, Response, Server


def app(request: Request) -> Response:
    return Response(
        200,
        json={
            "target": request.target,
            "http_version": request.http_version,
            "headers": request.headers.multi_items(),
        },
    )


@pytest.fixture
def server() -> Iterator[Server]:
    with Server(app, port=0) as server:
        yield server


@pytest.fixture
def tls_server(server_ssl_context: ssl.SSLContext) -> Iterator[Server]:
    with Server(app, port=0, ssl=server_ssl_context) as server:
        yield server


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as proxy:
        yield proxy


def test_http_goes_through_a_forward_proxy_in_absolute_form(
    server: Server, proxy: ForwardProxy
) -> None:
    with Client(proxy=proxy.url) as client:
        for _ in range(2):
            response = client.get(server.url + "/a?b=c")
            assert response.json()["target"] == "/a?b=c"
    assert proxy.requests == [("GET", server.url + "/a?b=c")] * 2
    assert client.connections_opened == 1  # kept alive to the proxy


def test_https_and_http2_go_through_a_connect_tunnel(
    tls_server: Server, proxy: ForwardProxy, h2_client_ssl_context: ssl.SSLContext
) -> None:
    with Client(proxy=proxy.url, http2=True, verify=h2_client_ssl_context) as client:
        for _ in range(3):
            response = client.get(tls_server.url + "/secret")
            assert response.http_version == "2"
            assert response.json()["target"] == "/secret"
    assert tls_server.address is not None
    assert proxy.connects == [f"127.0.0.1:{tls_server.address[1]}"]  # one tunnel, reused


def test_proxy_auth(server: Server, tls_server: Server, client_ssl_context: ssl.SSLContext) -> None:
    with ForwardProxy(auth=("user", "p@ss")) as proxy:
        with Client(proxy=proxy.url, verify=client_ssl_context) as client:
            assert (client.get(server.url + "/")).status == 407
            with pytest.raises(hyperpy.ProxyError) as caught:
                client.get(tls_server.url + "/")
            assert caught.value.status == 407
        with_auth = hyperpy.Proxy(proxy.url, auth=("user", "p@ss"))
        with Client(proxy=with_auth, verify=client_ssl_context) as client:
            assert (client.get(server.url + "/")).status == 200
            assert (client.get(tls_server.url + "/")).status == 200
        # Credentials in the proxy URL, percent-encoded.
        url = proxy.url.replace("http://", "http://user:p%40ss@")
        with Client(proxy=url) as client:
            seen = (client.get(server.url + "/")).json()["headers"]
            # The proxy's credentials never reach the origin.
            assert all(name != "proxy-authorization" for name, _ in seen)


def test_proxy_from_the_environment_and_no_proxy(
    server: Server, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with Client() as client:
        assert (client.get(server.url + "/env")).status == 200
    assert proxy.requests == [("GET", server.url + "/env")]
    with Client(trust_env=False) as client:
        assert (client.get(server.url + "/direct")).status == 200
    assert server.address is not None
    for no_proxy in ("127.0.0.1", "127.0.0.0/8", f"127.0.0.1:{server.address[1]}", "*"):
        monkeypatch.setenv("NO_PROXY", no_proxy)
        with Client() as client:
            assert (client.get(server.url + "/bypass")).status == 200
    monkeypatch.setenv("NO_PROXY", "127.0.0.1:1, example.com")
    with Client() as client:
        assert (client.get(server.url + "/proxied")).status == 200
    assert [target for _, target in proxy.requests] == [
        server.url + "/env",
        server.url + "/proxied",
    ]


@pytest.mark.parametrize("auth", [None, ("user", "secret")])
def test_socks5_proxy(
    tls_server: Server,
    h2_client_ssl_context: ssl.SSLContext,
    auth: tuple[str, str] | None,
) -> None:
    with Socks5Proxy(auth=auth) as socks:
        proxy = hyperpy.Proxy(socks.url, auth=auth)
        with Client(proxy=proxy, http2=True, verify=h2_client_ssl_context) as client:
            response = client.get(tls_server.url + "/via-socks")
            assert response.http_version == "2"
        assert tls_server.address is not None
        assert socks.connects == [("127.0.0.1", tls_server.address[1])]
    if auth is not None:
        with Socks5Proxy(auth=auth) as socks:
            wrong = hyperpy.Proxy(socks.url, auth=("user", "wrong"))
            with Client(proxy=wrong, verify=h2_client_ssl_context) as client:
                with pytest.raises(hyperpy.ProxyError):
                    client.get(tls_server.url + "/")
