# GENERATED from tests/_async/test_api.py by scripts/unasync.py: do not edit.
"""The one-call helpers (``hyperpy.get`` and friends, in each world) over loopback.

They open their own client, so they use the OS's sockets: so does the server here.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

import hyperpy
from hyperpy import Response, Server
from hyperpy._sync import demo
from hyperpy._sync.client import api


@pytest.fixture
def server() -> Iterator[Server]:
    with Server(demo.app, port=0) as server:
        yield server


def test_get(server: Server) -> None:
    response = api.get(server.url + "/")
    assert isinstance(response, Response)
    assert response.status == 200
    assert response.text == "Hello, world!"
    assert response.headers["server"] == "hyperpy"


def test_post_put_patch_echo(server: Server) -> None:
    assert (api.post(server.url + "/echo", content=b"posted")).content == b"posted"
    assert (api.put(server.url + "/echo", content=b"put")).content == b"put"
    assert (api.patch(server.url + "/echo", content=b"patched")).content == b"patched"
    assert (api.post(server.url + "/echo", json={"a": [1, 2]})).json() == {"a": [1, 2]}
    form = api.post(server.url + "/echo", data={"k": "v w"})
    assert form.content == b"k=v+w"
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"


def test_head_options_delete(server: Server) -> None:
    head = api.head(server.url + "/")
    assert head.status == 200
    assert head.content == b""
    assert head.headers["content-length"] == "13"
    assert (api.options(server.url + "/")).status == 200
    assert (api.delete(server.url + "/echo")).content == b""


def test_request(server: Server) -> None:
    response = api.request("PUT", server.url + "/echo", content=iter([b"a", b"b"]))
    assert response.content == b"ab"
    assert (api.request("GET", server.url + "/status/418")).status == 418


def test_params_and_headers(server: Server) -> None:
    response = api.get(server.url + "/status/204", params={"x": "1"}, headers={"X-A": "b"})
    assert response.status == 204
    assert response.request is not None
    assert response.request.url.query == "x=1"
    assert response.request.headers["x-a"] == "b"


def test_raise_for_status(server: Server) -> None:
    with pytest.raises(hyperpy.HTTPStatusError) as info:
        (api.get(server.url + "/nope")).raise_for_status()
    assert info.value.status == 404


def test_stream(server: Server) -> None:
    total = 0
    chunks = 0
    with api.stream("GET", server.url + "/bytes/2000000") as response:
        assert response.status == 200
        for chunk in response.iter_bytes():
            total += len(chunk)
            chunks += 1
    assert total == 2_000_000
    assert chunks > 1


def test_timeout(closed_port: int) -> None:
    with pytest.raises(hyperpy.ConnectError):
        api.get(f"http://127.0.0.1:{closed_port}/", timeout=2.0)


def test_https(server_ssl_context: ssl.SSLContext) -> None:
    with Server(demo.app, port=0, ssl=server_ssl_context) as tls:
        with pytest.raises(hyperpy.ConnectError):
            api.get(tls.url + "/")
        assert (api.get(tls.url + "/", verify=False)).text == "Hello, world!"


def test_the_blocking_helpers_are_the_public_ones() -> None:
    """``hyperpy.get`` and friends are the generated blocking helpers."""
    for name in ("request", "stream", "get", "head", "options", "delete", "post", "put", "patch"):
        assert getattr(hyperpy, name).__module__ == "hyperpy._sync.client.api"
