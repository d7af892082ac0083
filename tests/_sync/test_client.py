# GENERATED from tests/_async/test_client.py by scripts/unasync.py: do not edit.
"""Client requests against hyperpy servers: methods, responses and request bodies."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import pytest

import hyperpy
from hyperpy import Client, Server
from hyperpy.testing import MemoryNetwork

from .helpers import byte_chunks, pattern

BODY_METHODS = ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def test_get_response_attributes(demo_server: Server, client: Client) -> None:
    response = client.get(demo_server.url + "/")
    assert response.status == 200
    assert response.status_code == 200
    assert response.reason == "OK"
    assert response.http_version == "1.1"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == "13"
    assert response.content == b"Hello, world!"
    assert response.text == "Hello, world!"
    assert response.is_success
    assert response.raise_for_status() is response
    assert response.request is not None
    assert response.request.method == "GET"
    assert str(response.request.url) == demo_server.url + "/"


def test_date_and_server_headers(demo_server: Server, client: Client) -> None:
    response = client.get(demo_server.url + "/")
    assert response.headers["server"] == "hyperpy"
    date = parsedate_to_datetime(response.headers["date"])
    assert date.tzinfo is not None  # IMF-fixdate, GMT
    assert response.headers["date"].endswith(" GMT")


@pytest.mark.parametrize("method", BODY_METHODS)
def test_methods_with_body_echoed(demo_server: Server, client: Client, method: str) -> None:
    payload = f"payload for {method}".encode()
    response = client.request(method, demo_server.url + "/echo", content=payload)
    assert response.status == 200
    assert response.content == payload
    assert response.headers["content-length"] == str(len(payload))


@pytest.mark.parametrize("method", ["GET", *BODY_METHODS])
def test_server_sees_method(server: Server, client: Client, method: str) -> None:
    response = client.request(method, server.url + "/inspect")
    assert response.status == 200
    seen = response.json()
    assert seen["method"] == method
    assert seen["http_version"] == "1.1"
    assert seen["body"] == ""


def test_method_shortcuts(server: Server, client: Client) -> None:
    url = server.url + "/inspect"
    assert (client.get(url)).json()["method"] == "GET"
    assert (client.post(url, content=b"p")).json()["body"] == "p"
    assert (client.put(url, content=b"u")).json()["body"] == "u"
    assert (client.patch(url, content=b"a")).json()["body"] == "a"
    assert (client.delete(url)).json()["method"] == "DELETE"
    assert (client.options(url)).json()["method"] == "OPTIONS"
    head = client.head(url)
    assert head.status == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 0


def test_head_has_length_but_no_body(demo_server: Server, client: Client) -> None:
    head = client.head(demo_server.url + "/")
    assert head.status == 200
    assert head.headers["content-length"] == "13"
    assert head.content == b""
    streamed = client.head(demo_server.url + "/bytes/100000")
    assert streamed.headers["content-length"] == "100000"
    assert streamed.content == b""
    # No stray body bytes were sent: the same connection serves the next request.
    response = client.get(demo_server.url + "/")
    assert response.content == b"Hello, world!"
    assert client.connections_opened == 1


def test_default_request_headers(server: Server, client: Client) -> None:
    seen = (client.get(server.url + "/inspect")).json()
    headers = dict(seen["headers"])
    assert headers["host"] == server.url.removeprefix("http://")
    assert headers["user-agent"].startswith("hyperpy/")
    assert headers["accept"] == "*/*"
    # A body-less GET carries no framing headers.
    assert "content-length" not in headers
    assert "transfer-encoding" not in headers


def test_custom_and_client_headers(net: MemoryNetwork, server: Server) -> None:
    with Client(headers={"X-Client": "c", "User-Agent": "tester/1"}, network=net) as client:
        response = client.get(server.url + "/inspect", headers={"X-Request": "r"})
    headers = dict(response.json()["headers"])
    assert headers["x-client"] == "c"
    assert headers["x-request"] == "r"
    assert headers["user-agent"] == "tester/1"


def test_json_request_and_response(demo_server: Server, client: Client) -> None:
    data = {"name": "hyperpy", "n": [1, 2, 3], "nested": {"ok": True}, "text": "héllo"}
    response = client.post(demo_server.url + "/echo", json=data)
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == data


def test_bytes_body(server: Server, client: Client) -> None:
    payload = b"\x00\x01binary\xff"
    seen = (client.post(server.url + "/inspect", content=payload)).json()
    assert seen["body"].encode("latin-1") == payload
    assert dict(seen["headers"])["content-length"] == str(len(payload))


def test_str_body_is_utf8(demo_server: Server, client: Client) -> None:
    response = client.post(demo_server.url + "/echo", content="héllo wörld")
    assert response.content == "héllo wörld".encode()


def test_text_body(server: Server, client: Client) -> None:
    seen = (client.post(server.url + "/inspect", text="plain")).json()
    assert seen["body"] == "plain"
    assert dict(seen["headers"])["content-type"] == "text/plain; charset=utf-8"


def test_form_body(server: Server, client: Client) -> None:
    seen = (client.post(server.url + "/inspect", data={"a": "1", "b": "x y&z"})).json()
    assert seen["body"] == "a=1&b=x+y%26z"
    headers = dict(seen["headers"])
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["content-length"] == str(len(seen["body"]))


def test_empty_post_has_zero_length(server: Server, client: Client) -> None:
    seen = (client.post(server.url + "/inspect")).json()
    assert dict(seen["headers"])["content-length"] == "0"
    assert seen["body"] == ""


def test_iterable_body_is_chunked(server: Server, client: Client) -> None:
    pieces = [b"first,", b"second,", b"", b"third"]
    seen = (client.post(server.url + "/inspect", content=iter(pieces))).json()
    headers = dict(seen["headers"])
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    assert seen["body"] == "first,second,third"


def test_list_body_is_chunked(demo_server: Server, client: Client) -> None:
    response = client.put(demo_server.url + "/echo", content=[b"a" * 10, b"b" * 20])
    assert response.content == b"a" * 10 + b"b" * 20


def test_async_iterable_body_is_chunked(server: Server, client: Client) -> None:
    response = client.post(server.url + "/upload", content=byte_chunks(50, 1000))
    seen = response.json()
    assert seen["transfer-encoding"] == "chunked"
    assert seen["total"] == 50 * 1000
    expected = b"".join(pattern(i, 1000) for i in range(50))
    assert seen["sha256"] == hashlib.sha256(expected).hexdigest()


def test_streamed_body_with_explicit_length(server: Server, client: Client) -> None:
    def body() -> Iterator[bytes]:
        yield b"12345"
        yield b"67890"

    response = client.post(
        server.url + "/inspect", content=body(), headers={"content-length": "10"}
    )
    seen = response.json()
    headers = dict(seen["headers"])
    assert headers["content-length"] == "10"
    assert "transfer-encoding" not in headers
    assert seen["body"] == "1234567890"


def test_streamed_body_shorter_than_length_fails(server: Server, client: Client) -> None:
    with pytest.raises(hyperpy.LocalProtocolError):
        client.post(
            server.url + "/inspect", content=iter([b"short"]), headers={"content-length": "10"}
        )
    # The broken connection was dropped, not reused.
    response = client.get(server.url + "/")
    assert response.status == 200
    assert client.connections_opened == 2


def test_params(server: Server, client: Client) -> None:
    seen = (client.get(server.url + "/inspect", params={"a": "1", "b": "two words"})).json()
    assert seen["path"] == "/inspect"
    assert seen["query"] == "a=1&b=two+words"
    listed = (client.get(server.url + "/inspect?x=0", params=[("y", 1), ("y", 2)])).json()
    assert listed["target"] == "/inspect?x=0&y=1&y=2"
    raw = (client.get(server.url + "/inspect", params="q=raw%20string")).json()
    assert raw["query"] == "q=raw%20string"


def test_base_url(net: MemoryNetwork, server: Server) -> None:
    with Client(base_url=server.url + "/", network=net) as client:
        seen = (client.get("inspect?k=v")).json()
    assert seen["target"] == "/inspect?k=v"


def test_raise_for_status_404(server: Server, client: Client) -> None:
    response = client.get(server.url + "/missing")
    assert response.status == 404
    assert response.reason == "Not Found"
    assert response.text == "nothing here\n"
    assert not response.is_success
    with pytest.raises(hyperpy.HTTPStatusError) as info:
        response.raise_for_status()
    assert info.value.status == 404
    assert "404" in str(info.value)
    assert "/missing" in str(info.value)


def test_raise_for_status_5xx(demo_server: Server, client: Client) -> None:
    response = client.get(demo_server.url + "/status/503")
    assert response.status == 503
    assert response.reason == "Service Unavailable"
    with pytest.raises(hyperpy.HTTPStatusError, match="server error") as info:
        response.raise_for_status()
    assert info.value.status == 503


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses(demo_server: Server, client: Client, status: int) -> None:
    response = client.get(demo_server.url + f"/status/{status}")
    assert response.status == status
    assert response.content == b""
    # Connection still usable afterwards.
    assert (client.get(demo_server.url + "/")).status == 200
    assert client.connections_opened == 1


def test_invalid_url(client: Client) -> None:
    with pytest.raises(hyperpy.InvalidURL):
        client.get("ftp://127.0.0.1/")
    with pytest.raises(hyperpy.InvalidURL):
        client.get("http:///nohost")


def test_closed_client_refuses(net: MemoryNetwork, server: Server) -> None:
    client = Client(network=net)
    assert (client.get(server.url + "/")).status == 200
    client.close()
    with pytest.raises(hyperpy.ClientClosed):
        client.get(server.url + "/")


def test_two_origins_one_client(net: MemoryNetwork, server: Server, demo_server: Server) -> None:
    with Client(network=net) as client:
        assert (client.get(server.url + "/")).text == "ok"
        assert (client.get(demo_server.url + "/")).text == "Hello, world!"
        assert (client.get(server.url + "/")).text == "ok"
        assert (client.get(demo_server.url + "/")).text == "Hello, world!"
        assert client.connections_opened == 2


def test_client_skips_100_continue(demo_server: Server, client: Client) -> None:
    # The server answers "100 Continue" once /echo reads the body; the client skips it.
    response = client.post(
        demo_server.url + "/echo", content=b"expecting", headers={"expect": "100-continue"}
    )
    assert response.status == 200
    assert response.content == b"expecting"
    assert (client.get(demo_server.url + "/")).status == 200
    assert client.connections_opened == 1


def test_errors_leave_the_client_block_unwrapped(net: MemoryNetwork) -> None:
    """An error raised in the client's block reaches the caller as itself, not
    wrapped in an exception group by the client's background tasks."""
    net.refuse_next()
    with pytest.raises(hyperpy.ConnectError):
        with Client(network=net, http2_prior_knowledge=True) as client:
            client.get("http://nowhere.test/")
    with pytest.raises(KeyError):
        with Client(network=net):
            raise KeyError("the caller's own error")
