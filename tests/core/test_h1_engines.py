"""The HTTP/1.1 layer's behaviour on both engines: h11 (``hyperpy._core.h1_h11``) and
zttp (``hyperpy._core.h1_zttp``). Every case runs on each; the differential cases
run both on the same bytes and require the same events, statuses and bytes out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import formatdate
from types import ModuleType
from typing import Any

import pytest

from hyperpy import LocalProtocolError, RemoteProtocolError, ServerLimits
from hyperpy._core import h1_h11, h1_zttp
from hyperpy._core.fields import SERVER_HEADER

NOW = 1_700_000_000.0  # a fixed wall-clock second, for Date
ENGINES = [pytest.param(h1_h11, id="h11"), pytest.param(h1_zttp, id="zttp")]
H2C = b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> ModuleType:
    module: ModuleType = request.param
    return module


def _server(engine: ModuleType, data: bytes, limits: ServerLimits | None = None) -> Any:
    server = engine.H1Server(limits or ServerLimits())
    server.receive(data)
    return server


def _request(engine: ModuleType, server: Any) -> Any:
    event = server.next_event()
    assert type(event) is engine.RequestHead
    return event


def _finish_request(engine: ModuleType, server: Any) -> list[bytes]:
    """Read the request body to its end; returns the body pieces."""
    pieces = []
    event = server.next_event()
    while type(event) is engine.Data:
        pieces.append(event.data)
        event = server.next_event()
    assert type(event) is engine.EndOfMessage
    return pieces


def _rejected(engine: ModuleType, server: Any) -> Any:
    with pytest.raises(engine.RequestRejected) as info:
        while server.next_event() is not engine.NEED_DATA:
            pass
    return info.value


def _headers(head: bytes) -> dict[bytes, bytes]:
    lines = head.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]
    return {k.lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines)}


def _client(engine: ModuleType, method: bytes = b"GET", fields: list[Any] | None = None) -> Any:
    client = engine.H1Client()
    client.whole_request(method, b"/", fields or [(b"host", b"h")], b"")
    return client


def _events(engine: ModuleType, peer: Any, limit: int = 20) -> list[Any]:
    """Events until the peer needs data, pauses or closes."""
    out = []
    for _ in range(limit):
        event = peer.next_event()
        out.append(event)
        if event is engine.NEED_DATA or event is engine.PAUSED or event is engine.CLOSED:
            break
    return out


# -- requests in, events out ------------------------------------------------------


def test_get_round_trip(engine: ModuleType) -> None:
    server = _server(engine, b"GET /p?q=1 HTTP/1.1\r\nHost: h\r\nX-Thing: a b\r\n\r\n")
    head = _request(engine, server)
    assert head == engine.RequestHead(
        b"GET", b"/p?q=1", [(b"host", b"h"), (b"x-thing", b"a b")], b"1.1"
    )
    assert server.next_event() == engine.EndOfMessage([])
    assert server.request_complete
    assert server.next_event() is engine.NEED_DATA


def test_content_length_body(engine: ModuleType) -> None:
    server = _server(engine, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel")
    _request(engine, server)
    assert server.next_event() == engine.Data(b"hel")
    assert server.next_event() is engine.NEED_DATA
    assert not server.request_complete
    server.receive(b"lo")
    assert server.next_event() == engine.Data(b"lo")
    assert server.next_event() == engine.EndOfMessage([])


def test_chunked_body_with_trailers(engine: ModuleType) -> None:
    server = _server(
        engine,
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 9\r\nX-Other: 1\r\n\r\n",
    )
    _request(engine, server)
    assert _finish_request(engine, server) == [b"abc", b"de"]


def test_trailer_names_are_lowercase(engine: ModuleType) -> None:
    server = _server(
        engine,
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Sum: 9\r\n\r\n",
    )
    _request(engine, server)
    assert server.next_event() == engine.EndOfMessage([(b"x-sum", b"9")])


def test_transfer_coding_name_is_case_insensitive(engine: ModuleType) -> None:
    server = _server(
        engine,
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
    )
    assert (b"transfer-encoding", b"chunked") in _request(engine, server).headers
    assert _finish_request(engine, server) == [b"x"]


def test_identical_content_lengths_count_once(engine: ModuleType) -> None:
    server = _server(
        engine,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
    )
    assert _request(engine, server).headers == [(b"host", b"h"), (b"content-length", b"2")]
    assert _finish_request(engine, server) == [b"ok"]


def test_peer_closed(engine: ModuleType) -> None:
    server = _server(engine, b"")  # b"" means the peer closed
    assert server.next_event() is engine.CLOSED
    assert server.peer_closed


def test_peer_closes_after_a_request(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    _finish_request(engine, server)
    server.receive(b"")
    assert server.next_event() is engine.CLOSED
    assert server.peer_closed


@pytest.mark.parametrize(
    "data",
    [
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"GET / HTTP/1.1\r\nHost: h\r\n",
    ],
    ids=["length", "chunked", "head"],
)
def test_peer_closes_mid_message_is_400(engine: ModuleType, data: bytes) -> None:
    server = _server(engine, data)
    server.receive(b"")
    assert _rejected(engine, server).status == 400


# -- limits -------------------------------------------------------------------------


def test_target_too_long_is_414(engine: ModuleType) -> None:
    server = _server(
        engine,
        b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
        ServerLimits(max_target_bytes=100),
    )
    assert _rejected(engine, server).status == 414


def test_target_past_the_parsers_line_limit_is_414(engine: ModuleType) -> None:
    # Longer than zttp's own request-line bound (16 KiB): still hyperpy's 414.
    server = _server(engine, b"GET /" + b"a" * 17_000 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert _rejected(engine, server).status == 414


def test_target_at_limit_is_accepted(engine: ModuleType) -> None:
    target = b"/" + b"a" * 99
    server = _server(
        engine,
        b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n",
        ServerLimits(max_target_bytes=100),
    )
    assert _request(engine, server).target == target


@pytest.mark.parametrize("count", [11, 101])
def test_too_many_headers_is_431(engine: ModuleType, count: int) -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(count))
    limits = ServerLimits(max_header_count=10) if count == 11 else ServerLimits()
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n", limits)
    rejected = _rejected(engine, server)
    assert (rejected.status, rejected.detail) == (431, "too many header fields")


def test_header_count_at_limit_is_accepted(engine: ModuleType) -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(9))
    server = _server(
        engine,
        b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n",
        ServerLimits(max_header_count=10),
    )
    assert len(_request(engine, server).headers) == 10


@pytest.mark.parametrize("split", [False, True], ids=["whole", "incomplete"])
def test_head_too_large_is_431(engine: ModuleType, split: bool) -> None:
    head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 3000 + b"\r\n\r\n"
    server = engine.H1Server(ServerLimits(max_head_bytes=1024))
    server.receive(head[:2000] if split else head)
    assert _rejected(engine, server).status == 431


def test_head_at_default_limit(engine: ModuleType) -> None:
    fields = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(70))  # > 64 KiB
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n")
    assert _rejected(engine, server).status == 431


def test_incomplete_head_within_limit_waits(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 500)
    assert server.next_event() is engine.NEED_DATA
    server.receive(b"\r\n\r\n")
    assert _request(engine, server).headers[-1] == (b"x", b"v" * 500)


@pytest.mark.parametrize("version", [b"2.0", b"3.0", b"0.9"])
def test_non_http1_version_is_505(engine: ModuleType, version: bytes) -> None:
    server = _server(engine, b"GET / HTTP/" + version + b"\r\nHost: h\r\n\r\n")
    assert _rejected(engine, server).status == 505


# -- malformed requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", 400),
        (b"GET / HTTP/1.0\r\nHost: h\r\nHost: i\r\n\r\n", 400),  # h11 refuses two on 1.0 too
        (b"GET / HTTP/1.1\r\nHost: h\r\nbad line\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET / http/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400),  # obs-text in the target
        (b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b" GET / HTTP/1.1\r\n", 400),  # refused before the head is complete
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
    ],
)
def test_malformed_is_rejected(engine: ModuleType, data: bytes, status: int) -> None:
    assert _rejected(engine, _server(engine, data)).status == status


def test_error_response_after_rejection(engine: ModuleType) -> None:
    server = _server(engine, b"NONSENSE\r\n\r\n")
    rejected = _rejected(engine, server)
    data = server.error_response(rejected.status, rejected.detail)
    assert data.startswith(b"HTTP/1.1 400 ")
    headers = _headers(data)
    assert headers[b"connection"] == b"close"
    assert headers[b"server"] == SERVER_HEADER
    body = data.split(b"\r\n\r\n", 1)[1]
    assert int(headers[b"content-length"]) == len(body)
    assert body.startswith(b"400 ")
    assert not server.keep_alive


def test_error_response_body_is_bounded(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    data = server.error_response(400, "x" * 10_000)
    assert len(data.split(b"\r\n\r\n", 1)[1]) <= 512


def test_no_error_response_once_a_response_started(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    server.start_response(200, [], None)
    assert server.error_response(500, "too late") == b""


@pytest.mark.parametrize(
    "body",
    [b"ZZ\r\n", b"3\r\nabcX\r\n", b"3\r\nabc\r\n0\r\nbad trailer\r\n\r\n"],
    ids=["size", "data-crlf", "trailer"],
)
def test_body_error_while_reading_request_body(engine: ModuleType, body: bytes) -> None:
    server = _server(
        engine, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    )
    _request(engine, server)
    assert _rejected(engine, server).status == 400


# -- framing that could smuggle a request, and target forms -----------------------------


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        b"Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n",  # TE by obs-fold
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n",
    ],
    ids=["cl-te", "te-cl", "obs-fold-te", "cl-te-close"],
)
def test_content_length_and_transfer_encoding_is_rejected(
    engine: ModuleType, fields: bytes
) -> None:
    server = _server(
        engine, b"POST / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n0\r\n\r\nGET /x HTTP/1.1"
    )
    rejected = _rejected(engine, server)
    assert rejected.status == 400
    assert "ambiguous framing" in rejected.detail
    response = server.error_response(rejected.status, rejected.detail)
    assert _headers(response)[b"connection"] == b"close"  # never a second request
    assert not server.keep_alive
    assert not server.try_reuse()


@pytest.mark.parametrize(
    "coding",
    [
        b"Transfer-Encoding: gzip\r\n",
        b"Transfer-Encoding: zip\r\n",  # an unknown coding
        b"Transfer-Encoding: identity\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n",  # zttp would decode this one
        b"Transfer-Encoding: chunked, gzip\r\n",
        b"Transfer-Encoding: chunked, chunked\r\n",
        b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",  # zttp would too
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding:\r\n",
    ],
)
def test_any_coding_but_a_lone_chunked_is_400(engine: ModuleType, coding: bytes) -> None:
    server = _server(
        engine, b"POST / HTTP/1.1\r\nHost: h\r\n" + coding + b"\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    rejected = _rejected(engine, server)
    assert rejected.status == 400
    assert "Transfer-Encoding" in rejected.detail
    assert _headers(server.error_response(400, rejected.detail))[b"connection"] == b"close"


@pytest.mark.parametrize(
    "lengths",
    [b"Content-Length: 5\r\nContent-Length: 6\r\n", b"Content-Length: 5, 6\r\n"],
)
def test_differing_content_lengths_are_rejected(engine: ModuleType, lengths: bytes) -> None:
    server = _server(engine, b"POST / HTTP/1.1\r\nHost: h\r\n" + lengths + b"\r\nhello")
    assert _rejected(engine, server).status == 400


def test_connect_is_not_implemented(engine: ModuleType) -> None:
    server = _server(engine, b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
    assert _rejected(engine, server).status == 501


@pytest.mark.parametrize(
    ("target", "path", "authority"),
    [
        (b"http://example.org/echo?x=1", b"/echo?x=1", b"example.org"),
        (b"HTTPS://user:pw@example.org:8443", b"/", b"example.org:8443"),
        (b"http://example.org?q=1#frag", b"/?q=1", b"example.org"),
    ],
)
def test_absolute_form_authority_replaces_host(
    engine: ModuleType, target: bytes, path: bytes, authority: bytes
) -> None:
    server = _server(engine, b"GET " + target + b" HTTP/1.1\r\nHost: other\r\nX: y\r\n\r\n")
    head = _request(engine, server)
    assert head.target == path
    assert head.authority == authority
    assert [value for name, value in head.headers if name == b"host"] == [authority]
    assert (b"x", b"y") in head.headers


def test_asterisk_form_only_for_options(engine: ModuleType) -> None:
    assert (
        _request(engine, _server(engine, b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")).target == b"*"
    )
    for target in (b"*", b"example.org:80", b"ftp://example.org/"):
        server = _server(engine, b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
        assert _rejected(engine, server).status == 400


# -- responses: Date, Server, framing --------------------------------------------------


def test_response_gets_date_and_server(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    head = server.start_response(200, [(b"content-type", b"text/plain")], 2, b"OK", now=NOW)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    headers = _headers(head)
    assert headers[b"date"] == formatdate(NOW, usegmt=True).encode()
    assert headers[b"server"] == b"hyperpy"
    assert headers[b"content-length"] == b"2"
    assert b"connection" not in headers


@pytest.mark.parametrize(
    ("status", "reason", "line"),
    [
        (200, b"OK", b"HTTP/1.1 200 OK\r\n"),
        (299, b"Custom Thing", b"HTTP/1.1 299 Custom Thing\r\n"),
        (418, b"I'm a teapot", b"HTTP/1.1 418 I'm a teapot\r\n"),
        (404, b"", b"HTTP/1.1 404 \r\n"),
        (799, b"Odd", b"HTTP/1.1 799 Odd\r\n"),
    ],
)
def test_status_line_carries_the_given_reason(
    engine: ModuleType, status: int, reason: bytes, line: bytes
) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    assert server.start_response(status, [], 0, reason, now=NOW).startswith(line)


@pytest.mark.parametrize(
    "fields",
    [[(b"x", b"a\r\nInjected: yes")], [(b"x y", b"1")], [(b"x", b"a\nb")]],
    ids=["crlf", "name", "lf"],
)
def test_response_splitting_is_refused(engine: ModuleType, fields: list[Any]) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    with pytest.raises(LocalProtocolError):
        server.start_response(200, fields, 0)
    assert server.can_respond


def test_reason_with_crlf_is_refused(engine: ModuleType) -> None:
    # Response splitting through the reason phrase: refused by both engines.
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    with pytest.raises(LocalProtocolError):
        server.start_response(200, [], 0, b"OK\r\nX: y")


def test_response_keeps_given_date_and_server(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    given = [(b"date", b"Mon, 01 Jan 2024 00:00:00 GMT"), (b"server", b"custom")]
    headers = _headers(server.start_response(200, given, 0, now=NOW))
    assert headers[b"date"] == b"Mon, 01 Jan 2024 00:00:00 GMT"
    assert headers[b"server"] == b"custom"


def test_response_drops_connection_specific_headers(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    given = [(b"connection", b"upgrade"), (b"keep-alive", b"5"), (b"transfer-encoding", b"gzip")]
    headers = _headers(server.start_response(200, given, 3))
    assert b"keep-alive" not in headers
    assert b"connection" not in headers
    assert headers[b"content-length"] == b"3"
    assert b"transfer-encoding" not in headers


def test_unknown_length_is_chunked_for_http11(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    headers = _headers(server.start_response(200, [], None))
    assert headers[b"transfer-encoding"] == b"chunked"
    assert b"".join(server.body(b"abc")) == b"3\r\nabc\r\n"
    assert server.body(b"") == []
    assert server.end_response([(b"x-trailer", b"1")]) == b"0\r\nx-trailer: 1\r\n\r\n"


def test_large_chunk_is_not_copied(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    server.start_response(200, [], None)
    data = b"x" * (engine.COALESCE_LIMIT + 1)
    pieces = server.body(data)
    assert len(pieces) == 3
    assert pieces[1] is data


def test_unknown_length_is_close_delimited_for_http10(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.0\r\n\r\n")
    _request(engine, server)
    assert server.http_version == "1.0"
    headers = _headers(server.start_response(200, [], None))
    assert b"transfer-encoding" not in headers
    assert b"content-length" not in headers
    assert headers[b"connection"] == b"close"
    assert b"".join(server.body(b"raw")) == b"raw"
    server.end_response()
    assert not server.keep_alive
    assert not server.try_reuse()


def test_content_length_is_enforced(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    server.start_response(200, [], 3)
    with pytest.raises(LocalProtocolError):
        server.body(b"four")
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    server.start_response(200, [], 3)
    server.body(b"ab")
    with pytest.raises(LocalProtocolError):
        server.end_response()


def test_head_response_has_no_body_bytes(engine: ModuleType) -> None:
    server = _server(engine, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    _finish_request(engine, server)
    assert server.answering_head
    headers = _headers(server.start_response(200, [], 1000))
    assert headers[b"content-length"] == b"1000"
    assert server.end_response() == b""
    assert server.try_reuse()


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses_get_no_framing(engine: ModuleType, status: int) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    _finish_request(engine, server)
    data = b"".join(server.whole_response(status, [], b""))
    headers = _headers(data)
    assert b"content-length" not in headers
    assert b"transfer-encoding" not in headers
    assert data.endswith(b"\r\n\r\n")
    assert server.try_reuse()


# -- keep-alive, pipelining and draining --------------------------------------------------


def _exchange(engine: ModuleType, server: Any, length: int = 2) -> None:
    _request(engine, server)
    _finish_request(engine, server)
    server.start_response(200, [], length)
    server.body(b"x" * length)
    server.end_response()


def test_keep_alive_cycle_and_pipelining(engine: ModuleType) -> None:
    server = _server(
        engine, b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    _exchange(engine, server)
    assert server.keep_alive
    assert server.try_reuse()
    assert _request(engine, server).target == b"/2"  # the pipelined request, from the buffer


def test_pipelined_after_a_chunked_body(engine: ModuleType) -> None:
    data = (
        b"POST /1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\n\r\n\r\n\r\n0\r\nX: 1\r\n\r\n"  # the body holds a blank line
        b"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    for size in (len(data), 7, 1):  # whole, then in pieces, then byte by byte
        server = engine.H1Server(ServerLimits())
        for start in range(0, len(data), size):
            server.receive(data[start : start + size])
        targets = []
        for _ in range(3):
            head = server.next_event()
            while head is engine.NEED_DATA:
                head = server.next_event()
            targets.append(head.target)
            _finish_request(engine, server)
            server.whole_response(200, [], b"")
            assert server.try_reuse()
        assert targets == [b"/1", b"/2", b"/3"]
        assert server.next_event() is engine.NEED_DATA


def test_paused_when_the_next_request_came_early(engine: ModuleType) -> None:
    server = _server(engine, b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HT")
    _request(engine, server)
    _finish_request(engine, server)
    assert server.next_event() is engine.PAUSED


def test_next_request_needs_data_after_reuse(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _exchange(engine, server)
    assert server.try_reuse()
    assert server.next_event() is engine.NEED_DATA


@pytest.mark.parametrize(
    "connection", [b"Connection: close\r\n", b"Connection: keep-alive, Close\r\n"]
)
def test_client_connection_close_ends_keep_alive(engine: ModuleType, connection: bytes) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n" + connection + b"\r\n")
    _request(engine, server)
    _finish_request(engine, server)
    assert not server.request_complete  # h11: done, then straight to must-close
    head = server.start_response(200, [], 0)
    assert _headers(head)[b"connection"] == b"close"
    server.end_response()
    assert not server.keep_alive
    assert not server.try_reuse()


def test_http10_keep_alive_is_not_honoured(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    _request(engine, server)
    _finish_request(engine, server)
    assert _headers(server.start_response(200, [], 0))[b"connection"] == b"close"
    server.end_response()
    assert not server.try_reuse()


def test_close_after_response_adds_connection_close_and_stops_reuse(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    _finish_request(engine, server)
    server.close_after_response()
    assert not server.keep_alive
    head = server.start_response(200, [], 0)
    assert _headers(head)[b"connection"] == b"close"
    server.end_response()
    assert not server.try_reuse()


def test_reuse_refused_mid_request(engine: ModuleType) -> None:
    server = _server(engine, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhalf")
    _request(engine, server)
    server.start_response(200, [], 0)
    server.end_response()
    assert not server.request_complete
    assert not server.try_reuse()  # body not fully read: not at a message boundary


def test_can_respond_only_once(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    assert server.can_respond
    server.start_response(200, [], 0)
    assert not server.can_respond


def test_expect_100_continue(engine: ModuleType) -> None:
    server = _server(
        engine, b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    )
    _request(engine, server)
    assert server.expects_100_continue
    assert server.continue_100() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert not server.expects_100_continue
    assert server.can_respond  # the 100 is interim
    server.receive(b"abc")
    assert server.next_event() == engine.Data(b"abc")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", True),
        (b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", False),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continuex\r\nContent-Length: 1\r\n\r\n",
            False,
        ),
    ],
    ids=["case", "http10", "other"],
)
def test_expect_100_continue_variants(engine: ModuleType, head: bytes, expected: bool) -> None:
    server = _server(engine, head)
    _request(engine, server)
    assert server.expects_100_continue is expected


def test_expectation_ends_when_the_body_comes(engine: ModuleType) -> None:
    server = _server(
        engine, b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nab"
    )
    _request(engine, server)
    assert server.next_event() == engine.Data(b"ab")
    assert not server.expects_100_continue


def test_early_response_then_the_body(engine: ModuleType) -> None:
    server = _server(engine, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n")
    _request(engine, server)
    data = b"".join(server.whole_response(413, [], b"", b"Too Large"))
    assert data.startswith(b"HTTP/1.1 413 Too Large\r\n")
    assert not server.try_reuse()
    server.receive(b"abc")
    assert _finish_request(engine, server) == [b"abc"]
    assert server.try_reuse()


# -- h2c upgrade and protocol switches ------------------------------------------------------


def test_h2c_upgrade_needs_valid_settings(engine: ModuleType) -> None:
    server = engine.H1Server(ServerLimits())

    def upgrade(settings: bytes) -> list[tuple[bytes, bytes]]:
        return [(b"upgrade", b"h2c"), (b"http2-settings", settings)]

    assert server.wants_h2c(upgrade(b"AAMAAABkAAQAAP__")) == b"AAMAAABkAAQAAP__"
    assert server.wants_h2c(upgrade(b"")) == b""  # no settings at all is valid
    for bad in (b"not base64!", b"AAMAAAB", b"AAIAAAAC", b"AAUAAAAB"):  # cut; PUSH=2; tiny frame
        assert server.wants_h2c(upgrade(bad)) is None


@pytest.mark.parametrize(
    "extra",
    [
        b"Content-Length: 3\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n",
    ],
    ids=["body", "chunked", "two-settings"],
)
def test_h2c_upgrade_refused(engine: ModuleType, extra: bytes) -> None:
    server = _server(engine, b"POST / HTTP/1.1\r\nHost: h\r\n" + H2C + extra + b"\r\n")
    head = _request(engine, server)
    assert server.wants_h2c(head.headers) is None


@pytest.mark.parametrize("split", [None, 5, 1], ids=["whole", "pieces", "bytes"])
def test_h2c_switch_hands_over_the_preface(engine: ModuleType, split: int | None) -> None:
    data = b"GET / HTTP/1.1\r\nHost: h\r\n" + H2C + b"\r\n" + PREFACE + b"\x00\x00\x12\x04"
    server = engine.H1Server(ServerLimits())
    for start in range(0, len(data), split or len(data)):
        server.receive(data[start : start + (split or len(data))])
    head = server.next_event()
    while head is engine.NEED_DATA:
        head = server.next_event()
    assert server.wants_h2c(head.headers) == b"AAMAAABkAAQAAP__"
    assert server.next_event() == engine.EndOfMessage([])
    assert server.next_event() is engine.PAUSED  # h11: a switch was offered
    assert server.switch_protocols() == (
        b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
    )
    assert server.trailing_data == PREFACE + b"\x00\x00\x12\x04"
    assert not server.can_respond


def test_switch_after_keep_alive_requests(engine: ModuleType) -> None:
    data = (
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"\x81\x05hello"
    )
    server = _server(engine, data)
    _exchange(engine, server)
    assert server.try_reuse()
    _request(engine, server)
    _finish_request(engine, server)
    head = server.switch_protocols([(b"upgrade", b"websocket"), (b"connection", b"Upgrade")])
    assert head == (
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n"
    )
    assert server.trailing_data == b"\x81\x05hello"


def test_switch_without_an_offer_is_refused(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    _finish_request(engine, server)
    with pytest.raises(LocalProtocolError):
        server.switch_protocols()


def test_offer_refused_by_an_ordinary_response(engine: ModuleType) -> None:
    server = _server(
        engine,
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"
        b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    _request(engine, server)
    _finish_request(engine, server)
    server.whole_response(200, [], b"no")
    assert server.try_reuse()
    assert _request(engine, server).target == b"/2"


# -- the client side -------------------------------------------------------------------


def test_body_framing(engine: ModuleType) -> None:
    body_framing: Callable[..., Any] = engine.body_framing
    assert body_framing([], 5) == [(b"content-length", b"5")]
    assert body_framing([], None) == [(b"transfer-encoding", b"chunked")]
    assert body_framing([], None, allow_chunked=False) == []
    given = [(b"content-length", b"9")]
    assert body_framing(given, 5) == given  # the caller's framing wins


def test_client_request_and_response(engine: ModuleType) -> None:
    client = engine.H1Client()
    head = client.start_request(b"POST", b"/p", [(b"host", b"h"), (b"content-length", b"2")])
    assert head == b"POST /p HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\n"
    assert b"".join(client.body(b"ok")) == b"ok"
    assert client.end_request() == b""
    assert client.request_complete
    client.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    response = client.next_event()
    assert response == engine.ResponseHead(200, b"OK", [(b"content-length", b"2")], b"1.1")
    assert client.next_event() == engine.Data(b"hi")
    assert client.next_event() == engine.EndOfMessage([])
    assert client.response_complete
    assert not client.server_closed
    assert client.try_reuse()
    client.whole_request(b"GET", b"/again", [(b"host", b"h")], b"")
    client.receive(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert client.next_event().status == 204
    assert client.next_event() == engine.EndOfMessage([])
    assert client.try_reuse()


def test_client_writes_host_first(engine: ModuleType) -> None:
    client = engine.H1Client()
    head = client.start_request(b"GET", b"/", [(b"x", b"1"), (b"host", b"h")])
    assert head == b"GET / HTTP/1.1\r\nhost: h\r\nx: 1\r\n\r\n"


@pytest.mark.parametrize(
    "fields",
    [[(b"x", b"1")], [(b"host", b"a"), (b"host", b"b")], [(b"host", b"h"), (b"x", b"a\r\nb")]],
    ids=["no-host", "two-hosts", "crlf"],
)
def test_client_refuses_bad_request_heads(engine: ModuleType, fields: list[Any]) -> None:
    with pytest.raises(LocalProtocolError):
        engine.H1Client().start_request(b"GET", b"/", fields)


def test_client_chunked_request(engine: ModuleType) -> None:
    client = engine.H1Client()
    client.start_request(b"POST", b"/", [(b"host", b"h"), (b"transfer-encoding", b"chunked")])
    assert b"".join(client.body(b"abc")) == b"3\r\nabc\r\n"
    assert client.end_request([(b"x-sum", b"1")]) == b"0\r\nx-sum: 1\r\n\r\n"


def test_client_short_body_is_local_error(engine: ModuleType) -> None:
    client = engine.H1Client()
    client.start_request(b"POST", b"/", [(b"host", b"h"), (b"content-length", b"10")])
    client.body(b"short")
    with pytest.raises(LocalProtocolError, match="declared Content-Length"):
        client.end_request()


def test_client_long_body_is_local_error(engine: ModuleType) -> None:
    client = engine.H1Client()
    client.start_request(b"POST", b"/", [(b"host", b"h"), (b"content-length", b"2")])
    with pytest.raises(LocalProtocolError):
        client.body(b"too long")


BAD_FIELD = [(b"x-bad", b"a\r\nb")]


def test_malformed_fields_on_the_way_out_are_hyperpys_error(engine: ModuleType) -> None:
    """A trailer or 101 field that cannot be written raises hyperpy's LocalProtocolError
    on every engine (never the parser's own), the one the server's error path catches."""
    client = engine.H1Client()
    client.start_request(b"POST", b"/", [(b"host", b"h"), (b"transfer-encoding", b"chunked")])
    client.body(b"abc")
    with pytest.raises(LocalProtocolError, match="Illegal header value"):
        client.end_request(BAD_FIELD)

    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    _finish_request(engine, server)
    server.start_response(200, [], None)
    with pytest.raises(LocalProtocolError):
        server.end_response(BAD_FIELD)

    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n")
    _request(engine, server)
    _finish_request(engine, server)
    with pytest.raises(LocalProtocolError):
        server.switch_protocols([(b"upgrade", b"websocket"), *BAD_FIELD])


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 abc nonsense\r\n\r\n",
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"HTTP/1.1 1000 High\r\n\r\n",
        b"NONSENSE\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad line\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",  # never offered
    ],
)
def test_client_malformed_response(engine: ModuleType, response: bytes) -> None:
    client = _client(engine)
    client.receive(response)
    with pytest.raises(RemoteProtocolError, match="malformed response"):
        while client.next_event() is not engine.NEED_DATA:
            pass
    assert client.server_closed
    assert not client.try_reuse()


def test_client_response_head_too_large(engine: ModuleType) -> None:
    client = engine.H1Client(max_head_bytes=1024)
    client.whole_request(b"GET", b"/", [(b"host", b"h")], b"")
    client.receive(b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 2000)
    with pytest.raises(RemoteProtocolError):
        client.next_event()


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"HTTP/1.1 200 OK\r\nContent-",
    ],
    ids=["length", "chunked", "head"],
)
def test_client_server_closes_mid_message(engine: ModuleType, response: bytes) -> None:
    client = _client(engine)
    client.receive(response)
    client.receive(b"")
    with pytest.raises(RemoteProtocolError):
        while True:
            client.next_event()


def test_client_close_delimited_body(engine: ModuleType) -> None:
    client = _client(engine)
    client.receive(b"HTTP/1.1 200 OK\r\n\r\nabc")
    assert type(client.next_event()) is engine.ResponseHead
    assert client.next_event() == engine.Data(b"abc")
    assert client.next_event() is engine.NEED_DATA
    client.receive(b"def")
    assert client.next_event() == engine.Data(b"def")
    client.receive(b"")
    assert client.next_event() == engine.EndOfMessage([])
    assert client.next_event() is engine.CLOSED
    assert client.server_closed


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n"
        b"Content-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_client_server_closes(engine: ModuleType, response: bytes) -> None:
    client = _client(engine)
    client.receive(response)
    assert type(client.next_event()) is engine.ResponseHead
    assert type(client.next_event()) is engine.EndOfMessage
    assert client.server_closed
    assert not client.response_complete
    assert not client.try_reuse()


def test_client_request_close_ends_keep_alive(engine: ModuleType) -> None:
    client = _client(engine, fields=[(b"host", b"h"), (b"connection", b"close")])
    client.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    _events(engine, client)
    assert client.server_closed
    assert not client.try_reuse()


def test_client_sees_100_continue(engine: ModuleType) -> None:
    client = engine.H1Client()
    client.start_request(
        b"POST", b"/", [(b"host", b"h"), (b"expect", b"100-continue"), (b"content-length", b"1")]
    )
    client.receive(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    interim = client.next_event()
    assert type(interim) is engine.ResponseHead
    assert interim.status == 100
    final = client.next_event()
    assert type(final) is engine.ResponseHead
    assert final.status == 200
    assert client.next_event() == engine.EndOfMessage([])
    assert not client.try_reuse()  # the request body was never sent


@pytest.mark.parametrize(
    ("method", "response"),
    [
        (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"),
        (b"HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        (b"GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
        (b"GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
    ],
)
def test_client_bodiless_responses(engine: ModuleType, method: bytes, response: bytes) -> None:
    client = _client(engine, method)
    client.receive(response)
    assert type(client.next_event()) is engine.ResponseHead
    assert client.next_event() == engine.EndOfMessage([])
    assert client.try_reuse()


def test_client_chunked_response_with_trailers(engine: ModuleType) -> None:
    client = _client(engine)
    client.receive(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
    )
    assert client.next_event().headers == [(b"transfer-encoding", b"chunked")]
    assert client.next_event() == engine.Data(b"abc")
    assert client.next_event() == engine.EndOfMessage([(b"x-t", b"1")])
    assert client.try_reuse()


@pytest.mark.parametrize(
    "extra",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",  # an unsolicited second response
        b"HTTP/1.1 200 OK\r\n",  # the start of one
        b"H",
        b"garbage",
        b"\r\n",
    ],
)
@pytest.mark.parametrize("later", [False, True], ids=["same-read", "later-read"])
def test_client_bytes_after_the_response_stop_reuse(
    engine: ModuleType, extra: bytes, later: bool
) -> None:
    client = _client(engine)
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    client.receive(response if later else response + extra)
    while type(client.next_event()) is not engine.EndOfMessage:
        pass
    if later:
        client.receive(extra)
    assert client.next_event() is engine.PAUSED
    assert client.response_complete
    assert not client.try_reuse()


def test_client_switch_hands_over_trailing_bytes(engine: ModuleType) -> None:
    client = engine.H1Client()
    client.whole_request(
        b"GET",
        b"/",
        [(b"host", b"h"), (b"connection", b"Upgrade"), (b"upgrade", b"websocket")],
        b"",
    )
    client.receive(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUp")
    assert client.next_event().status == 100
    assert client.next_event() is engine.NEED_DATA
    client.receive(b"grade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05he")
    head = client.next_event()
    assert head.status == 101
    client.receive(b"llo")
    assert client.trailing_data == b"\x81\x05hello"
    assert client.next_event() is engine.PAUSED
    assert not client.response_complete
    assert not client.try_reuse()


def test_whole_request_small_body_is_one_buffer(engine: ModuleType) -> None:
    client = engine.H1Client()
    buffers = client.whole_request(
        b"POST", b"/", [(b"host", b"h"), (b"content-length", b"2")], b"ok"
    )
    assert buffers == [b"POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\nok"]
    assert client.request_complete


def test_whole_request_large_body_is_not_copied(engine: ModuleType) -> None:
    client = engine.H1Client()
    body = b"x" * (engine.COALESCE_LIMIT + 1)
    framing = [(b"host", b"h"), (b"content-length", str(len(body)).encode())]
    buffers = client.whole_request(b"PUT", b"/", framing, body)
    assert len(buffers) == 2
    assert buffers[1] is body


# -- whole messages in memory ---------------------------------------------------------


def test_whole_response_with_trailers_is_chunked(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    _finish_request(engine, server)
    data = b"".join(server.whole_response(200, [], b"abc", trailers=[(b"x-sum", b"1")]))
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-length" not in head.lower()
    assert body == b"3\r\nabc\r\n0\r\nx-sum: 1\r\n\r\n"


def test_whole_response_to_http10_drops_trailers(engine: ModuleType) -> None:
    server = _server(engine, b"GET / HTTP/1.0\r\n\r\n")
    _request(engine, server)
    _finish_request(engine, server)
    data = b"".join(server.whole_response(200, [], b"abc", trailers=[(b"x-sum", b"1")]))
    assert _headers(data)[b"content-length"] == b"3"
    assert data.endswith(b"\r\n\r\nabc")


def test_whole_response_to_head_has_length_but_no_body(engine: ModuleType) -> None:
    server = _server(engine, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    _finish_request(engine, server)
    data = b"".join(server.whole_response(200, [], b"hello", trailers=[(b"x-sum", b"1")]))
    assert _headers(data)[b"content-length"] == b"5"
    assert data.endswith(b"\r\n\r\n")


# -- both engines on the same bytes ------------------------------------------------------

_DATE = re.compile(rb"date: [^\r]*")


def _conversation(engine: ModuleType, chunks: list[bytes], limits: ServerLimits) -> list[Any]:
    """Serve ``chunks`` as one connection, answering each request; the transcript."""
    server = engine.H1Server(limits)
    feed = iter(chunks)
    out: list[Any] = []
    fields: list[Any] = []
    for _ in range(50):
        try:
            event = server.next_event()
        except engine.RequestRejected as rejected:
            response = server.error_response(rejected.status, rejected.detail)
            out += [("rejected", rejected.status, rejected.detail), _DATE.sub(b"", response)]
            break
        if event is engine.NEED_DATA:
            chunk = next(feed, None)
            if chunk is None:
                break
            server.receive(chunk)
            continue
        if type(event) is engine.RequestHead:
            fields = event.headers
            out += [tuple(event), server.expects_100_continue, server.http_version]
            continue
        out.append(event)
        if type(event) is engine.EndOfMessage:
            if server.wants_h2c(fields) is not None:
                out += [server.switch_protocols(), server.trailing_data]
                break
            response = b"".join(server.whole_response(200, [(b"x", b"1")], b"body", b"OK"))
            out += [_DATE.sub(b"", response), server.try_reuse()]
        elif event is engine.CLOSED or event is engine.PAUSED:
            break
    return out


_CORPUS = [
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n" + H2C + b"\r\n" + PREFACE,
    b"GET http://a.example/x HTTP/1.1\r\nHost: b\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n \r\n",  # a bad start to the second request
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/2.0\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\n"
    b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\n"
    b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"GET /" + b"a" * 150 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(12)) + b"\r\n",
    b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
    b"GET / HTTP/1.1\r\n",
]


@pytest.mark.parametrize("data", _CORPUS)
@pytest.mark.parametrize("split", [0, 1, 3, 16], ids=["whole", "bytes", "3", "16"])
@pytest.mark.parametrize("small", [False, True], ids=["default", "small-limits"])
def test_engines_agree(data: bytes, split: int, small: bool) -> None:
    chunks = [data[i : i + split] for i in range(0, len(data), split)] if split else [data]
    limits = ServerLimits(max_target_bytes=100, max_header_count=10) if small else ServerLimits()
    assert _conversation(h1_zttp, chunks, limits) == _conversation(h1_h11, chunks, limits)


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\nx\r\n0\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nuntil close",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\nleftover!",
        b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
    ],
)
@pytest.mark.parametrize("split", [0, 1, 5], ids=["whole", "bytes", "5"])
def test_client_engines_agree(response: bytes, split: int) -> None:
    def transcript(engine: ModuleType) -> list[Any]:
        client = _client(engine)
        chunks = (
            [response[i : i + split] for i in range(0, len(response), split)]
            if split
            else [response]
        )
        out: list[Any] = []
        for chunk in [*chunks, b""]:
            client.receive(chunk)
            try:
                out += _events(engine, client)
            except RemoteProtocolError:
                out.append("error")
                break
        return [*out, client.server_closed, client.response_complete, client.try_reuse()]

    if b"3, 3" in response:  # zttp refuses a list of lengths that h11 takes
        assert transcript(h1_zttp)[-4:] == ["error", True, False, False]
    else:
        assert transcript(h1_zttp) == transcript(h1_h11)


# -- where zttp is stricter than h11 (each still refused with h11's status) ---------------


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\nHost: h\n\n",  # bare LF line ends
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",  # obs-fold in an ordinary field
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n",  # a control byte in a value
        b'GET /a"b HTTP/1.1\r\nHost: h\r\n\r\n',  # a double quote in the target
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc",
        b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 17_000 + b"\r\n\r\n",  # a 17 KB field line
    ],
    ids=["bare-lf", "obs-fold", "control", "quote", "length-list", "long-line"],
)
def test_heads_only_zttp_refuses(head: bytes) -> None:
    assert type(_server(h1_h11, head).next_event()) is h1_h11.RequestHead
    assert _rejected(h1_zttp, _server(h1_zttp, head)).status in (400, 431)


def test_a_request_rejected_after_a_head_still_gets_its_error_response(
    engine: ModuleType,
) -> None:
    server = _server(engine, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    _request(engine, server)
    server.whole_response(200, [(b"content-length", b"5")], b"")
    _finish_request(engine, server)
    assert server.try_reuse()
    server.receive(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    rejected = _rejected(engine, server)
    data = server.error_response(rejected.status, rejected.detail)
    assert data.startswith(b"HTTP/1.1 400 ")  # before: nothing, just a close
