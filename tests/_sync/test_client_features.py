# GENERATED from tests/_async/test_client_features.py by scripts/unasync.py: do not edit.
"""The production client over real loopback sockets: redirects, auth, cookies,
bodies, decompression, deadlines, retries, hooks, Unix sockets and URLs.

Written once; the blocking twin is generated. The server is hyperpy's own,
serving the routes below.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import ssl
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import brotli
import pytest
import python_multipart as multipart_parser
import trustme
import zstandard

import hyperpy
from hyperpy import Client, Request, Response, Retry, Server, Timeout
from hyperpy._backends import SyncClock
from hyperpy._sync.client import api

REALM = "hyperpy-tests"
NONCE = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
USER, PASSWORD = "Mufasa", "Circle of Life"


def _query(request: Request) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(request.query).items()}


def _digest_ok(request: Request) -> bool:
    """The server's side of RFC 7616 digest (MD5, qop=auth), computed independently."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Digest "):
        return False
    fields: dict[str, str] = {}
    for part in header[len("Digest ") :].split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value.strip('"')

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{USER}:{REALM}:{PASSWORD}")
    ha2 = md5(f"{request.method}:{fields.get('uri', '')}")
    expected = md5(f"{ha1}:{NONCE}:{fields['nc']}:{fields['cnonce']}:auth:{ha2}")
    return fields.get("response") == expected and fields.get("uri") == request.target


def _drip(count: int, delay: float) -> Iterator[bytes]:
    for _ in range(count):
        yield b"x"
        SyncClock.sleep(delay)


class Counter:
    """Requests seen per path, across the test's server."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def hit(self, path: str) -> int:
        self.seen[path] = self.seen.get(path, 0) + 1
        return self.seen[path]


COUNTER = Counter()
BIG = os.urandom(64 * 1024) * 4  # 256 KiB, incompressible


def app(request: Request) -> Response:
    path = request.path
    query = _query(request)
    count = COUNTER.hit(path)
    if path == "/echo":
        body = request.read()
        return Response(
            200,
            json={
                "method": request.method,
                "target": request.target,
                "headers": request.headers.multi_items(),
                "body": body.decode("latin-1"),
            },
        )
    if path.startswith("/redirect/"):
        status = int(path.rsplit("/", 1)[1])
        request.read()
        return Response(status, headers={"location": query.get("to", "/echo")})
    if path == "/loop":
        return Response(302, headers={"location": "/loop"})
    if path == "/basic":
        expected = "Basic " + __import__("base64").b64encode(b"user:pass").decode()
        if request.headers.get("authorization") != expected:
            return Response(401, headers={"www-authenticate": 'Basic realm="x"'})
        return Response(200, text="basic ok")
    if path == "/digest":
        if not _digest_ok(request):
            challenge = f'Digest realm="{REALM}", qop="auth", nonce="{NONCE}", opaque="0a"'
            return Response(401, headers={"www-authenticate": challenge})
        return Response(200, text="digest ok")
    if path == "/set-cookies":
        return Response(
            200,
            headers=[
                ("set-cookie", "session=abc; Path=/"),
                ("set-cookie", "scoped=1; Path=/private"),
                ("set-cookie", "gone=1; Path=/; Max-Age=0"),
            ],
        )
    if path == "/gzip":
        return Response(200, content=gzip.compress(BIG), headers={"content-encoding": "gzip"})
    if path == "/deflate":
        return Response(200, content=zlib.compress(BIG), headers={"content-encoding": "deflate"})
    if path == "/br":
        return Response(200, content=brotli.compress(BIG), headers={"content-encoding": "br"})
    if path == "/zstd":
        return Response(200, content=zstandard.compress(BIG), headers={"content-encoding": "zstd"})
    if path == "/bomb":
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = b"\0" * (1 << 20)
        bomb = b"".join(packer.compress(zeros) for _ in range(200)) + packer.flush()
        return Response(200, content=bomb, headers={"content-encoding": "gzip"})
    if path == "/drip":
        return Response(200, content=_drip(int(query.get("n", "50")), 0.2))
    if path == "/flaky":
        # 503 with Retry-After for the first `fail` requests of a `key`, then 200.
        key = "/flaky/" + query.get("key", "")
        tries = COUNTER.hit(key)
        if tries <= int(query.get("fail", "2")):
            return Response(503, headers={"retry-after": "0"})
        return Response(200, json={"tries": tries})
    if path == "/lines":
        return Response(200, content=b"one\r\ntwo\nthr", headers={"content-type": "text/plain"})
    if path == "/flaky-upload":
        # 503 for the first upload of a `key`, then the multipart body parsed.
        body = request.read()
        if COUNTER.hit("/flaky-upload/" + query.get("key", "")) == 1:
            return Response(503)
        return Response(200, json=_parse_multipart(request, body))
    if path == "/too-many-codings":
        return Response(200, content=b"x", headers={"content-encoding": "gzip, " * 5 + "gzip"})
    if path == "/reject":
        return Response(413, text="too large")  # the body is never read
    if path == "/multipart":
        body = request.read()
        return Response(200, json=_parse_multipart(request, body))
    return Response(
        200,
        json={
            "path": path,
            "target": request.target,
            "count": count,
            "headers": request.headers.multi_items(),
        },
    )


def _parse_multipart(request: Request, body: bytes) -> dict[str, Any]:
    """Parse an upload with python-multipart, an independent parser."""
    ctype = request.headers["content-type"]
    boundary = ctype.split("boundary=", 1)[1].strip('"')
    parts: list[dict[str, Any]] = []
    current: dict[str, Any] = {}

    def on_part_begin() -> None:
        current.clear()
        current.update(headers={}, data=b"")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        current["field"] = data[start:end].decode().lower()

    def on_header_value(data: bytes, start: int, end: int) -> None:
        current["headers"][current["field"]] = data[start:end].decode()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current["data"] += data[start:end]

    def on_part_end() -> None:
        disposition = current["headers"].get("content-disposition", "")
        parts.append(
            {
                "disposition": disposition,
                "type": current["headers"].get("content-type"),
                "size": len(current["data"]),
                "sha256": hashlib.sha256(current["data"]).hexdigest(),
                "text": current["data"][:40].decode("latin-1"),
            }
        )

    parser = multipart_parser.MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    parser.write(body)
    parser.finalize()
    return {"parts": parts, "length": request.headers.get("content-length"), "total": len(body)}


@pytest.fixture
def server() -> Iterator[Server]:
    with Server(app, host="127.0.0.1", port=0) as server:
        yield server


# -- redirects -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "method"), [(301, "GET"), (302, "GET"), (303, "GET"), (307, "POST"), (308, "POST")]
)
def test_redirect_rewrites_the_method_as_browsers_do(
    server: Server, status: int, method: str
) -> None:
    with Client(follow_redirects=True) as client:
        response = client.post(f"{server.url}/redirect/{status}", content=b"payload")
        seen = response.json()
        assert seen["method"] == method
        assert seen["body"] == ("payload" if method == "POST" else "")
        assert [r.status for r in response.history] == [status]
        assert response.url == hyperpy.URL(server.url + "/echo")
        assert response.history[0].is_redirect


def test_redirects_are_not_followed_by_default(server: Server) -> None:
    with Client() as client:
        response = client.get(f"{server.url}/redirect/302")
        assert response.status == 302
        assert response.is_redirect
        followed = client.get(f"{server.url}/redirect/302", follow_redirects=True)
        assert followed.status == 200


def test_too_many_redirects_is_typed(server: Server) -> None:
    with Client(follow_redirects=True, max_redirects=3) as client:
        with pytest.raises(hyperpy.TooManyRedirects) as caught:
            client.get(f"{server.url}/loop")
        assert len(caught.value.history) == 4


def test_credentials_are_dropped_when_the_origin_changes(server: Server) -> None:
    assert server.address is not None
    other = f"http://localhost:{server.address[1]}"  # same server, another origin
    with Client(follow_redirects=True) as client:
        client.get(f"{server.url}/set-cookies")  # a cookie for 127.0.0.1
        same = client.get(
            f"{server.url}/redirect/302?to=/echo",
            headers={"authorization": "Bearer secret", "proxy-authorization": "Basic x"},
        )
        names = [name for name, _ in same.json()["headers"]]
        assert {"authorization", "proxy-authorization", "cookie"} <= set(names)
        cross = client.get(
            f"{server.url}/redirect/302?to={other}/echo",
            headers={"authorization": "Bearer secret", "proxy-authorization": "Basic x"},
        )
        names = [name for name, _ in cross.json()["headers"]]
        assert "authorization" not in names
        assert "proxy-authorization" not in names
        assert "cookie" not in names  # the jar's cookie is for 127.0.0.1 only


# -- auth ------------------------------------------------------------------------


def test_basic_auth_tuple_and_url_credentials(server: Server) -> None:
    with Client() as client:
        assert (client.get(f"{server.url}/basic")).status == 401
        assert (client.get(f"{server.url}/basic", auth=("user", "pass"))).text == "basic ok"
        url = server.url.replace("http://", "http://user:pass@") + "/basic"
        assert (client.get(url)).text == "basic ok"


def test_digest_auth_against_a_real_challenge(server: Server) -> None:
    auth = hyperpy.DigestAuth(USER, PASSWORD)
    with Client(auth=auth) as client:
        response = client.get(f"{server.url}/digest?x=1")
        assert response.status == 200, response.headers
        assert response.text == "digest ok"
        assert [r.status for r in response.history] == [401]
        wrong = client.get(f"{server.url}/digest", auth=hyperpy.DigestAuth(USER, "no"))
        assert wrong.status == 401


def test_callable_auth_for_bearer_tokens(server: Server) -> None:
    def bearer(request: Request) -> Request:
        request.headers["authorization"] = "Bearer t0ken"
        return request

    with Client(auth=bearer) as client:
        seen = (client.get(f"{server.url}/echo")).json()["headers"]
        assert ["authorization", "Bearer t0ken"] in seen


# -- cookies ---------------------------------------------------------------------


def test_cookies_persist_with_path_rules(server: Server) -> None:
    with Client() as client:
        response = client.get(f"{server.url}/set-cookies")
        assert response.cookies["session"] == "abc"
        assert client.cookies["session"] == "abc"
        assert "gone" not in client.cookies
        root = dict((client.get(f"{server.url}/echo")).json()["headers"])
        assert root["cookie"] == "session=abc"
        private = dict((client.get(f"{server.url}/private/x")).json()["headers"])
        assert sorted(private["cookie"].split("; ")) == ["scoped=1", "session=abc"]


def test_cookies_follow_redirects_and_per_request_cookies(server: Server) -> None:
    with Client(follow_redirects=True) as client:
        client.get(f"{server.url}/set-cookies")
        seen = dict((client.get(f"{server.url}/redirect/302")).json()["headers"])
        assert seen["cookie"] == "session=abc"
        own = dict((client.get(f"{server.url}/echo", cookies={"x": "y"})).json()["headers"])
        assert sorted(own["cookie"].split("; ")) == ["session=abc", "x=y"]
        assert "x" not in client.cookies  # per-request cookies are not kept


# -- bodies ----------------------------------------------------------------------


def test_params_json_and_form(server: Server) -> None:
    with Client(params={"a": "1"}) as client:
        seen = (client.post(f"{server.url}/echo?z=0", params={"b": ["2", "3"]})).json()
        assert seen["target"] == "/echo?z=0&a=1&b=2&b=3"
        seen = (client.post(f"{server.url}/echo", json={"k": "é"})).json()
        assert json.loads(seen["body"].encode("latin-1")) == {"k": "é"}
        seen = (client.post(f"{server.url}/echo", data={"k": "v w", "n": 1})).json()
        assert seen["body"] == "k=v+w&n=1"
        assert ["content-type", "application/x-www-form-urlencoded"] in seen["headers"]


def test_multipart_upload_streams_files(server: Server) -> None:
    big = os.urandom(3 * 1024 * 1024)
    with tempfile.TemporaryFile() as handle:
        handle.write(big)
        handle.seek(0)
        files = {
            "big": ("big.bin", handle, "application/octet-stream"),
            "note": ("note.txt", io.BytesIO(b"hello")),
        }
        with Client() as client:
            response = client.post(f"{server.url}/multipart", data={"field": "value"}, files=files)
    result = response.json()
    parts = {part["disposition"].split('name="')[1].split('"')[0]: part for part in result["parts"]}
    assert parts["field"]["text"] == "value"
    assert parts["big"]["size"] == len(big)
    assert parts["big"]["sha256"] == hashlib.sha256(big).hexdigest()
    assert 'filename="big.bin"' in parts["big"]["disposition"]
    assert parts["note"]["type"] == "text/plain"
    assert parts["note"]["text"] == "hello"
    assert result["length"] == str(result["total"])  # the length was known up front


# -- decompression ---------------------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_bodies_are_decoded_as_they_stream(server: Server, coding: str) -> None:
    with Client() as client:
        whole = client.get(f"{server.url}/{coding}")
        assert whole.content == BIG
        with client.stream("GET", f"{server.url}/{coding}") as response:
            chunks = [chunk for chunk in response.iter_bytes()]
        assert b"".join(chunks) == BIG
        echo = dict((client.get(f"{server.url}/echo")).json()["headers"])
        assert echo["accept-encoding"] == "gzip, deflate, br, zstd"


def test_a_zip_bomb_stops_with_a_typed_error(server: Server) -> None:
    with Client() as client:
        with pytest.raises(hyperpy.DecompressionBombError):
            client.get(f"{server.url}/bomb")
        # The connection was abandoned, the client carries on.
        assert (client.get(f"{server.url}/echo")).status == 200


# -- deadlines, retries ----------------------------------------------------------


def test_total_deadline_stops_a_dripping_server(server: Server) -> None:
    with Client(timeout=Timeout(5, total=1.0)) as client:
        start = SyncClock.now()
        with pytest.raises(hyperpy.ReadTimeout):
            client.get(f"{server.url}/drip?n=50")
        assert SyncClock.now() - start < 1.6


def test_status_retry_with_retry_after(server: Server) -> None:
    retry = Retry(total=3, status_forcelist=frozenset({503}), backoff_factor=0.01)
    with Client(retries=retry) as client:
        response = client.get(f"{server.url}/flaky?key=get&fail=2")
        assert response.status == 200
        assert response.json()["tries"] == 3
        # A POST is not in allowed_methods: its 503 comes back as it is.
        response = client.post(f"{server.url}/flaky?key=post&fail=2")
        assert response.status == 503


def test_connect_failures_are_retried_only_when_asked() -> None:
    with Client(retries=Retry(total=2, connect=2, backoff_factor=0.01)) as client:
        start = SyncClock.now()
        with pytest.raises(hyperpy.ConnectError):
            client.get("http://127.0.0.1:9/")  # discard port: refused
        assert SyncClock.now() - start < 2.0


# -- hooks, URLs, responses ------------------------------------------------------


def test_event_hooks_see_requests_and_responses(server: Server) -> None:
    seen: list[str] = []

    def on_request(request: Request) -> None:
        seen.append(f"> {request.method} {request.url.path}")

    def on_response(response: Response) -> None:
        seen.append(f"< {response.status}")

    hooks = {"request": [on_request], "response": [on_response]}
    with Client(event_hooks=hooks, follow_redirects=True) as client:
        client.get(f"{server.url}/redirect/302")
    assert seen == ["> GET /redirect/302", "< 302", "> GET /echo", "< 200"]


def test_base_url_keeps_its_path_and_urls_are_encoded(server: Server) -> None:
    with Client(base_url=server.url + "/api/v1") as client:
        assert (client.get("/users")).json()["path"] == "/api/v1/users"
        assert (client.get("café?q=a b")).json()["target"] == "/api/v1/caf%C3%A9?q=a%20b"
        with pytest.raises(hyperpy.InvalidURL):
            client.get("http://exa mple.org/")


def test_text_and_lines_stream(server: Server) -> None:
    with Client() as client:
        with client.stream("GET", f"{server.url}/lines") as response:
            lines = [line for line in response.iter_lines()]
        assert lines == ["one", "two", "thr"]
        with client.stream("GET", f"{server.url}/lines") as response:
            text = "".join([part for part in response.iter_text()])
        assert text == "one\r\ntwo\nthr"
        response = client.get(f"{server.url}/echo")
        assert response.elapsed.total_seconds() > 0


def test_unix_domain_socket() -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "hyperpy.sock")
        with Server(app, uds=path) as _, Client(uds=path) as client:
            response = client.get("http://localhost/echo")
            assert response.status == 200
            assert response.json()["target"] == "/echo"


def test_expect_100_continue(server: Server) -> None:
    sent: list[bytes] = []

    def body() -> Iterator[bytes]:
        sent.append(b"chunk")
        yield b"chunk"

    expect = {"expect": "100-continue"}
    with Client() as client:
        response = client.post(f"{server.url}/echo", content=b"data", headers=expect)
        assert response.json()["body"] == "data"
        start = SyncClock.now()
        response = client.post(f"{server.url}/reject", content=body(), headers=expect)
        assert response.status == 413
        assert sent == []  # the final answer came first: no body was sent
        assert SyncClock.now() - start < 0.9
        assert (client.get(f"{server.url}/echo")).status == 200


def test_module_level_helpers_take_the_same_arguments(server: Server) -> None:
    response = api.post(
        f"{server.url}/redirect/307",
        params={"to": "/echo"},
        json={"a": 1},
        auth=("user", "pass"),
        follow_redirects=True,
        retries=Retry(total=1),
        trust_env=False,
        timeout=Timeout(5, total=10),
    )
    seen = response.json()
    assert seen["method"] == "POST" and json.loads(seen["body"]) == {"a": 1}
    assert [r.status for r in response.history] == [307]


def test_a_multipart_upload_is_replayed_whole_on_a_status_retry(
    server: Server,
) -> None:
    data = os.urandom(200_000)
    retry = Retry(total=2, status_forcelist={503}, allowed_methods=None)
    with Client(retries=retry) as client:
        response = client.post(
            f"{server.url}/flaky-upload?key=m",
            files={"f": ("f.bin", io.BytesIO(data))},
        )
    assert response.status == 200
    part = response.json()["parts"][0]
    assert part["sha256"] == hashlib.sha256(data).hexdigest()


def test_an_undecodable_body_releases_its_connection(server: Server) -> None:
    with Client(max_connections=1, timeout=Timeout(5, pool=1)) as client:
        for _ in range(3):
            with pytest.raises(hyperpy.DecodingError):
                client.get(f"{server.url}/too-many-codings")
        assert (client.get(f"{server.url}/echo")).status == 200


def test_a_301_keeps_a_put_and_its_body(server: Server) -> None:
    with Client(follow_redirects=True) as client:
        response = client.put(f"{server.url}/redirect/301", content=b"kept")
        assert response.json()["method"] == "PUT"
        assert response.json()["body"] == "kept"


def test_client_certificates_for_mutual_tls(ca: trustme.CA, tmp_path: Path) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.configure_trust(server_context)
    server_context.verify_mode = ssl.CERT_REQUIRED  # the server asks for our certificate
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    both = tmp_path / "client.pem"
    ca.issue_cert("client@hyperpy.test").private_key_and_cert_chain_pem.write_to_path(str(both))
    with Server(app, port=0, ssl=server_context) as server:
        with Client(verify=str(ca_file), cert=str(both)) as client:
            assert (client.get(f"{server.url}/echo")).status == 200
        with Client(verify=str(ca_file)) as client:
            # TLS 1.3 reports the missing certificate only when the server reads.
            with pytest.raises(
                (hyperpy.ConnectError, hyperpy.ReadError, hyperpy.RemoteProtocolError)
            ):
                client.get(f"{server.url}/echo")
    with pytest.raises(FileNotFoundError):
        Client(verify=str(tmp_path / "missing.pem"))


def test_response_text_links_and_encoding() -> None:
    response = Response(
        200,
        content="caf\u00e9\nline two\r\n".encode("latin-1"),
        headers={
            "content-type": "text/plain; charset=ISO-8859-1",
            "link": '<https://h/p?page=2>; rel="next", <https://h/p?page=9>; rel="last"',
        },
    )
    assert response.encoding == "ISO-8859-1"
    assert list(response.iter_lines()) == ["caf\u00e9", "line two"]
    assert response.links["next"]["url"] == "https://h/p?page=2"
    assert response.links["last"]["rel"] == "last"
    response.encoding = "utf-8"
    assert response.text.startswith("caf\ufffd")
    unknown = Response(200, content=b"x", headers={"content-type": "text/plain; charset=nope"})
    assert unknown.encoding == "utf-8"
