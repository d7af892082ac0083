"""The one-call helpers (``hyperpy.get`` and friends, in each world) over loopback.

They open their own client, so they use the OS's sockets: so does the server here.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest

import hyperpy
from hyperpy import AsyncServer, Response
from hyperpy._async import demo
from hyperpy._async.client import api


@pytest.fixture
async def server() -> AsyncIterator[AsyncServer]:
    async with AsyncServer(demo.app, port=0) as server:
        yield server


async def test_get(server: AsyncServer) -> None:
    response = await api.get(server.url + "/")
    assert isinstance(response, Response)
    assert response.status == 200
    assert response.text == "Hello, world!"
    assert response.headers["server"] == "hyperpy"


async def test_post_put_patch_echo(server: AsyncServer) -> None:
    assert (await api.post(server.url + "/echo", content=b"posted")).content == b"posted"
    assert (await api.put(server.url + "/echo", content=b"put")).content == b"put"
    assert (await api.patch(server.url + "/echo", content=b"patched")).content == b"patched"
    assert (await api.post(server.url + "/echo", json={"a": [1, 2]})).json() == {"a": [1, 2]}
    form = await api.post(server.url + "/echo", data={"k": "v w"})
    assert form.content == b"k=v+w"
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"


async def test_head_options_delete(server: AsyncServer) -> None:
    head = await api.head(server.url + "/")
    assert head.status == 200
    assert head.content == b""
    assert head.headers["content-length"] == "13"
    assert (await api.options(server.url + "/")).status == 200
    assert (await api.delete(server.url + "/echo")).content == b""


async def test_request(server: AsyncServer) -> None:
    response = await api.request("PUT", server.url + "/echo", content=iter([b"a", b"b"]))
    assert response.content == b"ab"
    assert (await api.request("GET", server.url + "/status/418")).status == 418


async def test_params_and_headers(server: AsyncServer) -> None:
    response = await api.get(server.url + "/status/204", params={"x": "1"}, headers={"X-A": "b"})
    assert response.status == 204
    assert response.request is not None
    assert response.request.url.query == "x=1"
    assert response.request.headers["x-a"] == "b"


async def test_raise_for_status(server: AsyncServer) -> None:
    with pytest.raises(hyperpy.HTTPStatusError) as info:
        (await api.get(server.url + "/nope")).raise_for_status()
    assert info.value.status == 404


async def test_stream(server: AsyncServer) -> None:
    total = 0
    chunks = 0
    async with api.stream("GET", server.url + "/bytes/2000000") as response:
        assert response.status == 200
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            chunks += 1
    assert total == 2_000_000
    assert chunks > 1


async def test_timeout(closed_port: int) -> None:
    with pytest.raises(hyperpy.ConnectError):
        await api.get(f"http://127.0.0.1:{closed_port}/", timeout=2.0)


async def test_https(server_ssl_context: ssl.SSLContext) -> None:
    async with AsyncServer(demo.app, port=0, ssl=server_ssl_context) as tls:
        with pytest.raises(hyperpy.ConnectError):
            await api.get(tls.url + "/")
        assert (await api.get(tls.url + "/", verify=False)).text == "Hello, world!"


def test_the_blocking_helpers_are_the_public_ones() -> None:
    """``hyperpy.get`` and friends are the generated blocking helpers."""
    for name in ("request", "stream", "get", "head", "options", "delete", "post", "put", "patch"):
        assert getattr(hyperpy, name).__module__ == "hyperpy._sync.client.api"
