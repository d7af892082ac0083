"""Unit tests of the sans-IO HTTP/1.1 layer (``hyperpy._core.h1``): no sockets."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from hyperpy import LocalProtocolError, RemoteProtocolError, ServerLimits
from hyperpy._core.fields import SERVER_HEADER, http_date
from hyperpy._core.h1 import (
    CLOSED,
    COALESCE_LIMIT,
    NEED_DATA,
    Data,
    EndOfMessage,
    H1Client,
    H1Server,
    RequestHead,
    RequestRejected,
    ResponseHead,
    body_framing,
)

NOW = 1_700_000_000.0  # a fixed wall-clock second, for Date


def _server(data: bytes, limits: ServerLimits | None = None) -> H1Server:
    server = H1Server(limits or ServerLimits())
    server.receive(data)
    return server


def _request(server: H1Server) -> RequestHead:
    event = server.next_event()
    assert type(event) is RequestHead
    return event


def _finish_request(server: H1Server) -> None:
    event = server.next_event()
    while type(event) is Data:
        event = server.next_event()
    assert type(event) is EndOfMessage


def _headers(head: bytes) -> dict[bytes, bytes]:
    lines = head.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]
    return {k.lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines)}


# -- limits -----------------------------------------------------------------------


def test_target_too_long_is_414() -> None:
    server = _server(
        b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: h\r\n\r\n", ServerLimits(max_target_bytes=100)
    )
    with pytest.raises(RequestRejected) as info:
        server.next_event()
    assert info.value.status == 414


def test_target_at_limit_is_accepted() -> None:
    target = b"/" + b"a" * 99
    server = _server(
        b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n", ServerLimits(max_target_bytes=100)
    )
    assert _request(server).target == target


def test_too_many_headers_is_431() -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(11))
    server = _server(
        b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n", ServerLimits(max_header_count=10)
    )
    with pytest.raises(RequestRejected) as info:
        server.next_event()
    assert info.value.status == 431
    assert "header" in info.value.detail


def test_header_count_at_limit_is_accepted() -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(9))
    server = _server(
        b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n", ServerLimits(max_header_count=10)
    )
    assert len(_request(server).headers) == 10


@pytest.mark.parametrize("split", [False, True], ids=["whole", "incomplete"])
def test_head_too_large_is_431(split: bool) -> None:
    head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 3000 + b"\r\n\r\n"
    server = H1Server(ServerLimits(max_head_bytes=1024))
    # Incomplete: h11's own bound trips while the head is still arriving.
    server.receive(head[:2000] if split else head)
    with pytest.raises(RequestRejected) as info:
        server.next_event()
    assert info.value.status == 431


def test_non_http1_version_is_505() -> None:
    server = _server(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n")
    with pytest.raises(RequestRejected) as info:
        server.next_event()
    assert info.value.status == 505


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET / HTTP/1.1\r\nHost: h\r\nbad line\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: zip\r\n\r\n", 400),
    ],
)
def test_malformed_is_rejected(data: bytes, status: int) -> None:
    server = _server(data)
    with pytest.raises(RequestRejected) as info:
        server.next_event()
    assert info.value.status == status


def test_error_response_after_rejection() -> None:
    server = _server(b"NONSENSE\r\n\r\n")
    with pytest.raises(RequestRejected) as info:
        server.next_event()
    data = server.error_response(info.value.status, info.value.detail)
    assert data.startswith(b"HTTP/1.1 400 ")
    headers = _headers(data)
    assert headers[b"connection"] == b"close"
    assert headers[b"server"] == SERVER_HEADER
    body = data.split(b"\r\n\r\n", 1)[1]
    assert int(headers[b"content-length"]) == len(body)
    assert body.startswith(b"400 ")
    assert not server.keep_alive


def test_error_response_body_is_bounded() -> None:
    server = _server(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(server)
    data = server.error_response(400, "x" * 10_000)
    assert len(data.split(b"\r\n\r\n", 1)[1]) <= 512


def test_body_error_while_reading_request_body() -> None:
    server = _server(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n")
    _request(server)
    with pytest.raises(RequestRejected) as info:
        server.next_event()
    assert info.value.status == 400


# -- responses: Date, Server, framing --------------------------------------------------


def test_response_gets_date_and_server() -> None:
    server = _server(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(server)
    head = server.start_response(200, [(b"content-type", b"text/plain")], 2, b"OK", now=NOW)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    headers = _headers(head)
    assert headers[b"date"] == formatdate(NOW, usegmt=True).encode()
    assert headers[b"server"] == b"hyperpy"
    assert headers[b"content-length"] == b"2"
    assert b"connection" not in headers


def test_response_keeps_given_date_and_server() -> None:
    server = _server(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(server)
    given = [(b"date", b"Mon, 01 Jan 2024 00:00:00 GMT"), (b"server", b"custom")]
    headers = _headers(server.start_response(200, given, 0, now=NOW))
    assert headers[b"date"] == b"Mon, 01 Jan 2024 00:00:00 GMT"
    assert headers[b"server"] == b"custom"


def test_response_drops_connection_specific_headers() -> None:
    server = _server(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(server)
    given = [(b"connection", b"upgrade"), (b"keep-alive", b"5"), (b"transfer-encoding", b"gzip")]
    headers = _headers(server.start_response(200, given, 3))
    assert b"keep-alive" not in headers
    assert b"connection" not in headers
    assert headers[b"content-length"] == b"3"
    assert b"transfer-encoding" not in headers


def test_unknown_length_is_chunked_for_http11() -> None:
    server = _server(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(server)
    headers = _headers(server.start_response(200, [], None))
    assert headers[b"transfer-encoding"] == b"chunked"
    assert b"".join(server.body(b"abc")) == b"3\r\nabc\r\n"
    assert server.end_response([(b"x-trailer", b"1")]) == b"0\r\nx-trailer: 1\r\n\r\n"


def test_unknown_length_is_close_delimited_for_http10() -> None:
    server = _server(b"GET / HTTP/1.0\r\n\r\n")
    _request(server)
    assert server.http_version == "1.0"
    headers = _headers(server.start_response(200, [], None))
    assert b"transfer-encoding" not in headers
    assert b"content-length" not in headers
    assert b"".join(server.body(b"raw")) == b"raw"
    server.end_response()
    assert not server.keep_alive
    assert not server.try_reuse()


def test_head_response_has_no_body_bytes() -> None:
    server = _server(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(server)
    _finish_request(server)
    headers = _headers(server.start_response(200, [], 1000))
    assert headers[b"content-length"] == b"1000"
    # The driver sends no body for HEAD (h11 would refuse one), only the end.
    assert server.end_response() == b""
    assert server.try_reuse()


def test_http_date_format_and_cache() -> None:
    assert http_date(NOW) == formatdate(NOW, usegmt=True).encode()
    assert http_date(NOW + 0.5) == http_date(NOW)  # same second
    assert http_date(NOW + 1) != http_date(NOW)
    assert http_date().endswith(b" GMT")


# -- keep-alive and draining -----------------------------------------------------------


def _exchange(server: H1Server, length: int = 2) -> None:
    _request(server)
    _finish_request(server)
    server.start_response(200, [], length)
    server.body(b"x" * length)
    server.end_response()


def test_keep_alive_cycle_and_pipelining() -> None:
    server = _server(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
    _exchange(server)
    assert server.keep_alive
    assert server.try_reuse()
    assert _request(server).target == b"/2"  # the pipelined request, from the buffer


def test_next_request_needs_data_after_reuse() -> None:
    server = _server(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _exchange(server)
    assert server.try_reuse()
    assert server.next_event() is NEED_DATA


def test_client_connection_close_ends_keep_alive() -> None:
    server = _server(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    _request(server)
    _finish_request(server)
    head = server.start_response(200, [], 0)
    assert _headers(head)[b"connection"] == b"close"
    server.end_response()
    assert not server.keep_alive
    assert not server.try_reuse()


def test_close_after_response_adds_connection_close_and_stops_reuse() -> None:
    server = _server(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(server)
    _finish_request(server)
    server.close_after_response()
    assert not server.keep_alive
    head = server.start_response(200, [], 0)
    assert _headers(head)[b"connection"] == b"close"
    server.end_response()
    assert not server.try_reuse()


def test_reuse_refused_mid_request() -> None:
    server = _server(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhalf")
    _request(server)
    server.start_response(200, [], 0)
    server.end_response()
    assert not server.request_complete
    assert not server.try_reuse()  # body not fully read: not at a message boundary


def test_can_respond_only_once() -> None:
    server = _server(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(server)
    assert server.can_respond
    server.start_response(200, [], 0)
    assert not server.can_respond


def test_peer_closed() -> None:
    server = _server(b"")  # b"" means the peer closed
    event = server.next_event()
    assert event is CLOSED
    assert server.peer_closed


def test_expect_100_continue() -> None:
    server = _server(
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    )
    _request(server)
    assert server.expects_100_continue
    assert server.continue_100() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert not server.expects_100_continue
    server.receive(b"abc")
    assert server.next_event() == Data(b"abc")


# -- the client side -------------------------------------------------------------------


def test_body_framing() -> None:
    assert body_framing([], 5) == [(b"content-length", b"5")]
    assert body_framing([], None) == [(b"transfer-encoding", b"chunked")]
    assert body_framing([], None, allow_chunked=False) == []
    given = [(b"content-length", b"9")]
    assert body_framing(given, 5) == given  # the caller's framing wins
    given = [(b"transfer-encoding", b"chunked")]
    assert body_framing(given, 5) == given


def test_client_request_and_response() -> None:
    client = H1Client()
    head = client.start_request(b"POST", b"/p", [(b"host", b"h"), (b"content-length", b"2")])
    assert head == b"POST /p HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\n"
    assert b"".join(client.body(b"ok")) == b"ok"
    assert client.end_request() == b""
    assert client.request_complete
    client.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    response = client.next_event()
    assert type(response) is ResponseHead
    assert response.status == 200
    assert client.next_event() == Data(b"hi")
    assert client.next_event() == EndOfMessage([])
    assert client.response_complete
    assert not client.server_closed
    assert client.try_reuse()


def test_client_chunked_request() -> None:
    client = H1Client()
    client.start_request(b"POST", b"/", [(b"host", b"h"), (b"transfer-encoding", b"chunked")])
    assert b"".join(client.body(b"abc")) == b"3\r\nabc\r\n"
    assert client.end_request() == b"0\r\n\r\n"


def test_client_short_body_is_local_error() -> None:
    client = H1Client()
    client.start_request(b"POST", b"/", [(b"host", b"h"), (b"content-length", b"10")])
    client.body(b"short")
    with pytest.raises(LocalProtocolError, match="declared length"):
        client.end_request()


def test_client_long_body_is_local_error() -> None:
    client = H1Client()
    client.start_request(b"POST", b"/", [(b"host", b"h"), (b"content-length", b"2")])
    with pytest.raises(LocalProtocolError):
        client.body(b"too long")


def test_client_malformed_response() -> None:
    client = H1Client()
    client.start_request(b"GET", b"/", [(b"host", b"h")])
    client.end_request()
    client.receive(b"HTTP/1.1 abc nonsense\r\n\r\n")
    with pytest.raises(RemoteProtocolError, match="malformed response"):
        client.next_event()


def test_client_server_closes() -> None:
    client = H1Client()
    client.start_request(b"GET", b"/", [(b"host", b"h")])
    client.end_request()
    client.receive(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert type(client.next_event()) is ResponseHead
    assert type(client.next_event()) is EndOfMessage
    assert client.server_closed
    assert not client.try_reuse()


def test_client_sees_100_continue() -> None:
    client = H1Client()
    client.start_request(
        b"POST", b"/", [(b"host", b"h"), (b"expect", b"100-continue"), (b"content-length", b"1")]
    )
    client.receive(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    interim = client.next_event()
    assert type(interim) is ResponseHead
    assert interim.status == 100
    final = client.next_event()
    assert type(final) is ResponseHead
    assert final.status == 200


# -- whole messages in memory ---------------------------------------------------------


def test_whole_request_small_body_is_one_buffer() -> None:
    client = H1Client()
    buffers = client.whole_request(
        b"POST", b"/", [(b"host", b"h"), (b"content-length", b"2")], b"ok"
    )
    assert buffers == [b"POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\nok"]
    assert client.request_complete


def test_whole_request_large_body_is_not_copied() -> None:
    client = H1Client()
    body = b"x" * (COALESCE_LIMIT + 1)
    framing = [(b"host", b"h"), (b"content-length", str(len(body)).encode())]
    buffers = client.whole_request(b"PUT", b"/", framing, body)
    assert len(buffers) == 2
    assert buffers[1] is body


def test_whole_response_with_trailers_is_chunked() -> None:
    server = _server(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(server)
    _finish_request(server)
    data = b"".join(server.whole_response(200, [], b"abc", trailers=[(b"x-sum", b"1")]))
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-length" not in head.lower()
    assert body == b"3\r\nabc\r\n0\r\nx-sum: 1\r\n\r\n"


def test_whole_response_to_http10_drops_trailers() -> None:
    server = _server(b"GET / HTTP/1.0\r\n\r\n")
    _request(server)
    _finish_request(server)
    data = b"".join(server.whole_response(200, [], b"abc", trailers=[(b"x-sum", b"1")]))
    assert _headers(data)[b"content-length"] == b"3"
    assert data.endswith(b"\r\n\r\nabc")


def test_whole_response_to_head_has_length_but_no_body() -> None:
    server = _server(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(server)
    _finish_request(server)
    data = b"".join(server.whole_response(200, [], b"hello", trailers=[(b"x-sum", b"1")]))
    assert _headers(data)[b"content-length"] == b"5"
    assert data.endswith(b"\r\n\r\n")


# -- framing that could smuggle a request, and target forms -----------------------------


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        b"Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n",  # TE by obs-fold
    ],
    ids=["cl-te", "te-cl", "obs-fold-te"],
)
def test_content_length_and_transfer_encoding_is_rejected(fields: bytes) -> None:
    server = _server(b"POST / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n0\r\n\r\nGET /x HTTP/1.1")
    with pytest.raises(RequestRejected) as info:
        server.next_event()
    assert info.value.status == 400
    assert "ambiguous framing" in info.value.detail
    response = server.error_response(info.value.status, info.value.detail)
    assert _headers(response)[b"connection"] == b"close"  # never a second request


def test_differing_content_lengths_are_rejected() -> None:
    server = _server(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
    )
    with pytest.raises(RequestRejected) as info:
        server.next_event()
    assert info.value.status == 400


def test_connect_is_not_implemented() -> None:
    server = _server(b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
    with pytest.raises(RequestRejected) as info:
        server.next_event()
    assert info.value.status == 501


@pytest.mark.parametrize(
    ("target", "path", "authority"),
    [
        (b"http://example.org/echo?x=1", b"/echo?x=1", b"example.org"),
        (b"HTTPS://user:pw@example.org:8443", b"/", b"example.org:8443"),
        (b"http://example.org?q=1#frag", b"/?q=1", b"example.org"),
    ],
)
def test_absolute_form_authority_replaces_host(
    target: bytes, path: bytes, authority: bytes
) -> None:
    server = _server(b"GET " + target + b" HTTP/1.1\r\nHost: other\r\nX: y\r\n\r\n")
    head = _request(server)
    assert head.target == path
    assert head.authority == authority
    assert [value for name, value in head.headers if name == b"host"] == [authority]
    assert (b"x", b"y") in head.headers


def test_asterisk_form_only_for_options() -> None:
    assert _request(_server(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")).target == b"*"
    for target in (b"*", b"example.org:80", b"ftp://example.org/"):
        with pytest.raises(RequestRejected) as info:
            _server(b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n").next_event()
        assert info.value.status == 400


def test_h2c_upgrade_needs_valid_settings() -> None:
    server = H1Server(ServerLimits())

    def upgrade(settings: bytes) -> list[tuple[bytes, bytes]]:
        return [(b"upgrade", b"h2c"), (b"http2-settings", settings)]

    assert server.wants_h2c(upgrade(b"AAMAAABkAAQAAP__")) == b"AAMAAABkAAQAAP__"
    assert server.wants_h2c(upgrade(b"")) == b""  # no settings at all is valid
    for bad in (b"not base64!", b"AAMAAAB", b"AAIAAAAC", b"AAUAAAAB"):  # cut; PUSH=2; tiny frame
        assert server.wants_h2c(upgrade(bad)) is None
