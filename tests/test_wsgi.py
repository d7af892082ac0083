"""hyperpy.wsgi: PEP 3333 apps on the blocking Server, over HTTP/1.1, h2c and h2 (TLS).

Everything that crosses the wire runs over real loopback sockets, against the
blocking ``Server`` and ``Client``, and curl; the environ, the validation and
``wsgi.input`` are also checked directly. Every wait is bounded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import flask
import pytest

from hyperpy import Client, Request, Response, Server, TransportError
from hyperpy.wsgi import FileWrapper, WSGIAdapter, WSGIInput

WAIT = 10.0  # the bound on every wait for the other side
BIG = os.urandom(1024 * 1024)  # 1 MiB
CURL = "/usr/bin/curl"

Environ = dict[str, Any]


# -- transports and servers -----------------------------------------------------------


@dataclass
class Transport:
    name: str
    server_options: dict[str, Any] = field(default_factory=dict)
    client_options: dict[str, Any] = field(default_factory=dict)
    version: str = "1.1"  # what the client's responses say
    scheme: str = "http"


@pytest.fixture(params=["http/1.1", "h2c", "h2"])
def transport(
    request: pytest.FixtureRequest,
    server_ssl_context: ssl.SSLContext,
    h2_client_ssl_context: ssl.SSLContext,
) -> Transport:
    if request.param == "http/1.1":
        return Transport("http/1.1")
    if request.param == "h2c":
        return Transport("h2c", client_options={"http2_prior_knowledge": True}, version="2")
    return Transport(
        "h2",
        server_options={"ssl": server_ssl_context},
        client_options={"http2": True, "verify": h2_client_ssl_context},
        version="2",
        scheme="https",
    )


@pytest.fixture(params=["http/1.1", "h2c"])
def cleartext(request: pytest.FixtureRequest) -> Transport:
    if request.param == "http/1.1":
        return Transport("http/1.1")
    return Transport("h2c", client_options={"http2_prior_knowledge": True}, version="2")


@contextmanager
def serving(transport: Transport, app: Any, **options: Any) -> Iterator[tuple[str, Client]]:
    """``app`` behind a WSGIAdapter on a loopback Server, and a client for it."""
    adapter = WSGIAdapter(app, **options)
    with Server(adapter, port=0, **transport.server_options) as server:
        with Client(timeout=5.0, **transport.client_options) as client:
            yield server.url, client


class Tracked:
    """An app iterable that counts its close() calls; it may fail, or run long."""

    def __init__(
        self, chunks: Iterable[bytes], *, fail_after: int | None = None, limit: int | None = None
    ) -> None:
        self._chunks = iter(chunks)
        self._fail_after = fail_after
        self.limit = limit
        self.produced = 0
        self.closes = 0
        self.closed = threading.Event()

    def __iter__(self) -> Tracked:
        return self

    def __next__(self) -> bytes:
        assert not self.closes, "iterated after close()"
        if self._fail_after is not None and self.produced >= self._fail_after:
            raise RuntimeError("the body broke")
        if self.limit is not None and self.produced >= self.limit:
            raise StopIteration
        chunk = next(self._chunks)
        self.produced += 1
        return chunk

    def close(self) -> None:
        self.closes += 1
        self.closed.set()


def endless(size: int = 16 * 1024) -> Iterator[bytes]:
    while True:
        yield b"x" * size


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("hyperpy") and r.levelno >= 40]


# -- a raw app under wsgiref's validator ------------------------------------------------


def simple_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
    stream = environ["wsgi.input"]
    path = environ["PATH_INFO"]
    if path == "/read":
        body = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
    elif path == "/readline":
        lines = []
        while True:
            line = stream.readline()
            if not line:
                break
            lines.append(line)
        body = b"|".join(lines)
    elif path == "/readlines":
        body = b"|".join(stream.readlines())
    elif path == "/iter":
        body = b"|".join(stream)
    else:
        body = f"{environ['REQUEST_METHOD']} {path} {environ['QUERY_STRING']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def streaming_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (f"part{i};".encode() for i in range(5))


@pytest.mark.filterwarnings("error::wsgiref.validate.WSGIWarning")
def test_validator_is_satisfied(transport: Transport, caplog: pytest.LogCaptureFixture) -> None:
    lines = b"one\ntwo\n\nthree"
    with serving(transport, validator(simple_app)) as (base, client):
        response = client.get(base + "/hello?a=1")
        assert (response.status, response.text) == (200, "GET /hello a=1")
        assert response.http_version == transport.version
        response = client.post(base + "/read", content=b"posted body")
        assert response.content == b"posted body"
        response = client.post(base + "/read", content=BIG)
        assert response.content == BIG
        response = client.post(base + "/readline", content=lines)
        assert response.content == b"one\n|two\n|\n|three"
        response = client.post(base + "/readlines", content=lines)
        assert response.content == b"one\n|two\n|\n|three"
        response = client.post(base + "/iter", content=lines)
        assert response.content == b"one\n|two\n|\n|three"
    with serving(transport, validator(streaming_app)) as (base, client):
        assert client.get(base + "/").text == "part0;part1;part2;part3;part4;"
    assert not errors_logged(caplog)


# -- the environ --------------------------------------------------------------------------


def environ_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
    shown = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int, tuple))}
    shown["wsgi.input"] = type(environ["wsgi.input"]).__name__
    shown["wsgi.errors"] = environ["wsgi.errors"] is sys.stderr
    shown["wsgi.file_wrapper"] = environ["wsgi.file_wrapper"] is FileWrapper
    shown["body"] = environ["wsgi.input"].read().decode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(shown).encode()]


def test_environ_over_the_wire(transport: Transport) -> None:
    headers = [
        ("X-Forwarded-For", "5.6.7.8"),
        ("X_Forwarded_For", "1.2.3.4"),  # spoofing attempt: dropped
        ("X-Rep", "a"),
        ("X-Rep", "b"),
        ("Cookie", "a=1"),
        ("Cookie", "b=2"),
        ("Content-Type", "text/plain"),
    ]
    with serving(transport, environ_app) as (base, client):
        response = client.post(base + "/some/path?q=1&r=%20", headers=headers, content=b"abc")
    env = response.json()
    port = base.rsplit(":", 1)[1]
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/some/path"
    assert env["QUERY_STRING"] == "q=1&r=%20"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == port
    assert env["HTTP_HOST"] == f"127.0.0.1:{port}"
    assert env["SERVER_PROTOCOL"] == f"HTTP/{transport.version}"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"].isdigit()
    assert env["HTTP_X_FORWARDED_FOR"] == "5.6.7.8"
    assert env["HTTP_X_REP"] == "a, b"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == transport.scheme
    assert env["wsgi.input"] == "WSGIInput"
    assert env["wsgi.input_terminated"] is True
    assert env["wsgi.errors"] is True
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.file_wrapper"] is True
    assert env["body"] == "abc"


def test_environ_without_content_length_and_client() -> None:
    environ = WSGIAdapter(environ_app, multiprocess=True).environ(
        Request("GET", "http://example.org/x")
    )
    assert "CONTENT_LENGTH" not in environ and "CONTENT_TYPE" not in environ
    assert "REMOTE_ADDR" not in environ
    assert environ["HTTP_HOST"] == "example.org"  # as HTTP/2's :authority gives it
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.org", "80")
    assert environ["wsgi.multiprocess"] is True


@pytest.mark.parametrize(
    ("root_path", "path", "script_name", "path_info"),
    [
        ("", "/", "", "/"),
        ("/app", "/app/x/y", "/app", "/x/y"),
        ("/app/", "/app/x", "/app", "/x"),
        ("/app", "/app", "/app", ""),
        ("/app", "/application", "/app", "/application"),  # a segment boundary only
        ("/app", "/other", "/app", "/other"),
        ("", "/caf%C3%A9", "", "/caf\xc3\xa9"),  # PEP 3333: bytes as latin-1 str
        ("", "/a%2Fb%20c", "", "/a/b c"),
        ("/caf\xe9", "/caf%C3%A9/x", "/caf\xc3\xa9", "/x"),
    ],
)
def test_script_name_and_path_info(
    root_path: str, path: str, script_name: str, path_info: str
) -> None:
    adapter = WSGIAdapter(environ_app, root_path=root_path)
    environ = adapter.environ(Request("GET", "http://h" + path))
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == (script_name, path_info)


def test_errors_stream_is_the_given_one() -> None:
    class Errors:
        def write(self, text: str) -> int:
            return len(text)

        def writelines(self, lines: list[str]) -> None:
            pass

        def flush(self) -> None:
            pass

    stream: Any = Errors()
    environ = WSGIAdapter(environ_app, errors=stream).environ(Request("GET", "http://h/"))
    assert environ["wsgi.errors"] is stream


# -- wsgi.input -----------------------------------------------------------------------------


class Pulls:
    """A request body stream that counts the chunks taken from it."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self.taken = 0

    def __iter__(self) -> Pulls:
        return self

    def __next__(self) -> bytes:
        if self.taken == len(self._chunks):
            raise StopIteration
        self.taken += 1
        return self._chunks[self.taken - 1]


def make_input(chunks: list[bytes]) -> tuple[WSGIInput, Pulls]:
    pulls = Pulls(chunks)
    return WSGIInput(Request("POST", "http://h/", stream=pulls)), pulls


def test_input_reads_lazily() -> None:
    stream, pulls = make_input([b"abc", b"def\nghi", b"\n", b"jkl"])
    assert pulls.taken == 0
    assert stream.read(2) == b"ab"
    assert pulls.taken == 1
    assert stream.read(3) == b"cde"
    assert pulls.taken == 2
    assert stream.readline() == b"f\n"
    assert pulls.taken == 2
    assert stream.readline(2) == b"gh"
    assert stream.readline() == b"i\n"
    assert pulls.taken == 3
    assert stream.read() == b"jkl"
    assert stream.read() == b""
    assert stream.read(5) == b""
    assert stream.readline() == b""


def test_input_lines() -> None:
    stream, _ = make_input([b"a\nb", b"b\n", b"ccc\nd"])
    assert list(stream) == [b"a\n", b"bb\n", b"ccc\n", b"d"]
    stream, _ = make_input([b"a\nb", b"b\n", b"ccc\nd"])
    assert stream.readlines(3) == [b"a\n", b"bb\n"]
    assert stream.readlines() == [b"ccc\n", b"d"]
    stream, _ = make_input([b"abcdef"])
    assert stream.readline(4) == b"abcd"
    assert stream.read(None) == b"ef"


def test_input_streams_with_backpressure(cleartext: Transport) -> None:
    """The app gets the first line while the client still holds back the rest."""
    first_line_read = threading.Event()

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        first = stream.readline()
        first_line_read.set()
        rest = stream.read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [first + b"|" + rest]

    def body() -> Iterator[bytes]:
        yield b"line one\n"
        assert first_line_read.wait(WAIT)
        yield b"line two\n"

    with serving(cleartext, app) as (base, client):
        response = client.post(base + "/", content=body())
    assert response.content == b"line one\n|line two\n"


# -- Flask --------------------------------------------------------------------------------


class Gates:
    """Lets a streamed response go on one chunk at a time, as the test says."""

    def __init__(self, count: int) -> None:
        self.events = [threading.Event() for _ in range(count)]


def make_flask_app(gates: Gates) -> flask.Flask:
    app = flask.Flask("wsgi_test_app")

    @app.get("/")
    def hello() -> str:
        return "Hello, world!"

    @app.post("/echo")
    def echo() -> flask.Response:
        return flask.Response(flask.request.get_data(), mimetype="application/octet-stream")

    @app.get("/stream")
    def stream() -> flask.Response:
        def chunks() -> Iterator[str]:
            tag = flask.request.args["tag"]  # the request context lives on
            for i, gate in enumerate(gates.events):
                yield f"{tag}{i};"
                if not gate.wait(WAIT):
                    raise TimeoutError("the test never read the chunk")

        return flask.Response(flask.stream_with_context(chunks()), mimetype="text/plain")

    @app.get("/links")
    def links() -> dict[str, str]:
        return {
            "hello": flask.url_for("hello"),
            "external": flask.url_for("echo", _external=True),
            "script_root": flask.request.script_root,
            "path": flask.request.path,
        }

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret detail")

    @app.get("/p/<name>")
    def named(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "path": flask.request.path,
            "args": flask.request.args.to_dict(flat=False),
            "query": flask.request.query_string.decode(),
        }

    return app


@pytest.fixture
def gates() -> Gates:
    return Gates(3)


@pytest.fixture
def flask_app(gates: Gates) -> flask.Flask:
    return make_flask_app(gates)


def test_flask_basics(transport: Transport, flask_app: flask.Flask) -> None:
    with serving(transport, flask_app) as (base, client):
        response = client.get(base + "/")
        assert (response.status, response.text) == (200, "Hello, world!")
        assert response.http_version == transport.version
        assert response.headers["content-length"] == "13"
        response = client.head(base + "/")
        assert (response.status, response.content) == (200, b"")
        response = client.post(base + "/echo", content=BIG)
        assert response.status == 200
        assert response.content == BIG
        assert client.get(base + "/nope").status == 404


def test_flask_error_is_a_500_without_details(transport: Transport, flask_app: flask.Flask) -> None:
    flask_app.logger.disabled = True  # Flask logs it itself: keep the test output quiet
    with serving(transport, flask_app) as (base, client):
        response = client.get(base + "/boom")
    assert response.status == 500
    assert "secret detail" not in response.text


def test_flask_query_and_non_ascii_path(transport: Transport, flask_app: flask.Flask) -> None:
    with serving(transport, flask_app) as (base, client):
        response = client.get(base + "/p/caf%C3%A9?x=%C3%A9&y=1&y=2&z=a+b")
    assert response.json() == {
        "name": "café",
        "path": "/p/café",
        "args": {"x": ["é"], "y": ["1", "2"], "z": ["a b"]},
        "query": "x=%C3%A9&y=1&y=2&z=a+b",
    }


def test_flask_root_path(transport: Transport, flask_app: flask.Flask) -> None:
    with serving(transport, flask_app, root_path="/app") as (base, client):
        assert client.get(base + "/app/").text == "Hello, world!"
        links = client.get(base + "/app/links").json()
        # Behind a proxy that strips the prefix, paths come without it: still served.
        stripped = client.get(base + "/links").json()
    assert stripped == links
    assert links == {
        "hello": "/app/",
        "external": base + "/app/echo",
        "script_root": "/app",
        "path": "/links",
    }


def test_flask_streams_chunk_by_chunk(
    transport: Transport, flask_app: flask.Flask, gates: Gates
) -> None:
    """Each chunk reaches the client before the app makes the next one."""
    with serving(transport, flask_app) as (base, client):
        with client.stream("GET", base + "/stream?tag=t") as response:
            assert response.status == 200
            assert "content-length" not in response.headers
            chunks = response.iter_bytes()
            for i, gate in enumerate(gates.events):
                expected = f"t{i};".encode()
                received = b""
                while len(received) < len(expected):
                    received += next(chunks)
                assert received == expected
                gate.set()
            assert b"".join(chunks) == b""


# -- close(), exactly once ----------------------------------------------------------------


def tracked_app(body: Tracked) -> Any:
    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return body

    return app


def test_close_once_after_a_normal_response(transport: Transport) -> None:
    body = Tracked([b"one ", b"two ", b"three"])
    with serving(transport, tracked_app(body)) as (base, client):
        assert client.get(base + "/").content == b"one two three"
        assert body.closed.wait(WAIT)
    assert body.closes == 1


def test_close_once_after_a_head_request(cleartext: Transport) -> None:
    body = Tracked([b"never sent"])
    with serving(cleartext, tracked_app(body)) as (base, client):
        assert client.head(base + "/").content == b""
        assert body.closed.wait(WAIT)
    assert body.closes == 1


def test_close_once_when_the_body_raises(
    transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    body = Tracked(endless(), fail_after=3)
    with serving(transport, tracked_app(body)) as (base, client):
        with pytest.raises(TransportError):
            client.get(base + "/")
        assert body.closed.wait(WAIT)
    assert body.closes == 1
    failures = [r for r in caplog.records if r.name == "hyperpy.wsgi"]
    assert failures and "mid-response" in failures[0].getMessage()
    assert failures[0].exc_info is not None


def test_close_once_when_the_client_disconnects() -> None:
    body = Tracked(endless(), limit=4096)  # 64 MiB, were it never cut short
    with Server(WSGIAdapter(tracked_app(body)), port=0) as server:
        assert server.address is not None
        with socket.create_connection(server.address[:2], timeout=WAIT) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                data = sock.recv(65536)
                assert data, "the server closed before the head"
                head += data
            assert head.startswith(b"HTTP/1.1 200 ")
        assert body.closed.wait(WAIT)
        assert body.produced < body.limit  # closed because the client left
    assert body.closes == 1


def test_close_once_when_the_client_closes_mid_stream(cleartext: Transport) -> None:
    body = Tracked(endless(), limit=4096)
    with serving(cleartext, tracked_app(body)) as (base, client):
        with client.stream("GET", base + "/") as response:
            assert next(response.iter_bytes())
        assert body.closed.wait(WAIT)
        assert body.produced < body.limit
    assert body.closes == 1


def test_close_once_when_the_app_fails_before_its_head(caplog: pytest.LogCaptureFixture) -> None:
    def body() -> Iterator[bytes]:
        try:
            yield b"x"  # before start_response: an error
        finally:
            closed.append(True)

    closed: list[bool] = []
    response = WSGIAdapter(lambda environ, start_response: body())(Request("GET", "http://h/"))
    assert response.status == 500
    assert closed == [True]


# -- start_response, write(), exc_info ------------------------------------------------------


def test_write_callable_output_comes_first(cleartext: Transport) -> None:
    body = Tracked([b"!", b"?"])

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"hello ")
        write(b"world")
        return body

    def list_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"hello ")
        return [b"world"]

    def interleaved_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"a")

        def chunks() -> Iterator[bytes]:
            write(b"b")
            yield b"c"
            write(b"d")

        return chunks()

    with serving(cleartext, app) as (base, client):
        assert client.get(base + "/").text == "hello world!?"
    assert body.closes == 1
    with serving(cleartext, list_app) as (base, client):
        response = client.get(base + "/")
        assert response.text == "hello world"
        assert response.headers["content-length"] == "11"
    with serving(cleartext, interleaved_app) as (base, client):
        assert client.get(base + "/").text == "abcd"


def test_file_wrapper(transport: Transport, tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(BIG)
    opened: list[Any] = []

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        file = open(path, "rb")  # noqa: SIM115 - the wrapper closes it
        opened.append(file)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](file, 8192)

    with serving(transport, app) as (base, client):
        response = client.get(base + "/")
    assert response.content == BIG
    assert len(opened) == 1 and opened[0].closed


def test_exc_info_replaces_headers_not_yet_sent(cleartext: Transport) -> None:
    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("failed before the body")
        except ValueError:
            start_response(
                "503 Service Unavailable",
                [("Content-Type", "text/plain"), ("Retry-After", "1")],
                sys.exc_info(),
            )
        return [b"try later"]

    with serving(cleartext, app) as (base, client):
        response = client.get(base + "/")
    assert (response.status, response.text) == (503, "try later")
    assert response.headers["retry-after"] == "1"


def test_exc_info_reraises_once_headers_are_sent(
    cleartext: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    closed = threading.Event()

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])

        def chunks() -> Iterator[bytes]:
            try:
                yield b"partial"
                try:
                    raise ValueError("failed mid-body")
                except ValueError:
                    start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
                yield b"never"
            finally:
                closed.set()

        return chunks()

    with serving(cleartext, app) as (base, client):
        with pytest.raises(TransportError):
            client.get(base + "/")
        assert closed.wait(WAIT)
    failures = [r for r in caplog.records if r.name == "hyperpy.wsgi"]
    assert failures and failures[0].exc_info is not None
    assert str(failures[0].exc_info[1]) == "failed mid-body"


def test_start_response_twice_is_an_error(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        start_response("404 Not Found", [])
        return [b""]

    response = WSGIAdapter(app)(Request("GET", "http://h/"))
    assert response.status == 500
    assert "second time" in str(caplog.records[-1].exc_info[1])  # type: ignore[index]


def test_lazy_start_response(cleartext: Transport) -> None:
    def lazy(environ: Environ, start_response: Any) -> Iterator[bytes]:
        yield b""
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"lazy"
        yield b" body"

    def lazy_empty(environ: Environ, start_response: Any) -> Iterator[bytes]:
        write = start_response("201 Created", [("Content-Type", "text/plain")])
        write(b"written")
        yield from ()

    with serving(cleartext, lazy) as (base, client):
        assert client.get(base + "/").text == "lazy body"
    with serving(cleartext, lazy_empty) as (base, client):
        response = client.get(base + "/")
        assert (response.status, response.text) == (201, "written")
        assert response.headers["content-length"] == "7"


def test_exception_before_start_response_is_a_logged_500(
    cleartext: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        raise RuntimeError("secret detail")

    with serving(cleartext, app) as (base, client):
        response = client.get(base + "/")
    assert (response.status, response.text) == (500, "Internal Server Error\n")
    failures = [r for r in caplog.records if r.name == "hyperpy.wsgi"]
    assert len(failures) == 1
    assert str(failures[0].exc_info[1]) == "secret detail"  # type: ignore[index]


def never_starts(environ: Environ, start_response: Any) -> Iterable[bytes]:
    return iter([b""])


def body_before_start(environ: Environ, start_response: Any) -> Iterator[bytes]:
    yield b"too early"
    start_response("200 OK", [])


def returns_a_string(environ: Environ, start_response: Any) -> Any:
    start_response("200 OK", [])
    return "text"


def yields_text(environ: Environ, start_response: Any) -> Any:
    start_response("200 OK", [])
    return ["text"]


def respond(status: Any, headers: Any) -> Any:
    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        start_response(status, headers)
        return [b"body"]

    return app


@pytest.mark.parametrize(
    "app",
    [
        never_starts,
        body_before_start,
        returns_a_string,
        yields_text,
        respond("200", []),
        respond("20 OK", []),
        respond("OK 200", []),
        respond(200, []),
        respond("200 OK\r\nX-Injected: 1", []),
        respond("200 \u20ac", []),
        respond("100 Continue", []),
        respond("200 OK", [("X-A", "b\r\nX-Injected: 1")]),
        respond("200 OK", [("X A", "b")]),
        respond("200 OK", [("X-A", 1)]),
        respond("200 OK", [(b"X-A", b"b")]),
        respond("200 OK", [("X-A", "\u20ac")]),
        respond("200 OK", [("X-A", "b", "c")]),
        respond("200 OK", (("X-A", "b"),)),
    ],
)
def test_app_misuse_is_a_500(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    response = WSGIAdapter(app)(Request("GET", "http://h/"))
    assert (response.status, response.content) == (500, b"Internal Server Error\n")
    assert [r.name for r in errors_logged(caplog)] == ["hyperpy.wsgi"]


def test_response_head(cleartext: Transport) -> None:
    headers = [
        ("Content-Type", "text/plain"),
        ("Connection", "close, X-Private"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("X-Private", "1"),
        ("X-Kept", "  padded  "),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]
    response = WSGIAdapter(respond("299 Custom Thing", headers))(Request("GET", "http://h/"))
    assert (response.status, response.reason) == (299, "Custom Thing")
    assert response.headers.raw == [
        (b"content-type", b"text/plain"),
        (b"x-kept", b"padded"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]
    with serving(cleartext, respond("299 Custom Thing", headers)) as (base, client):
        response = client.get(base + "/")
        assert response.status == 299
        if cleartext.version == "1.1":
            assert response.reason == "Custom Thing"
        assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
        assert "x-private" not in response.headers
        assert client.get(base + "/").status == 299  # the connection was kept


def test_dropped_response_is_closed() -> None:
    """A response the server never sends (the client gone first) still closes the app's
    iterable, once it is dropped."""
    body = Tracked([b"never sent"])
    response = WSGIAdapter(tracked_app(body))(Request("GET", "http://h/"))
    assert isinstance(response, Response) and body.closes == 0
    del response
    assert body.closes == 1


# -- curl -----------------------------------------------------------------------------------


@pytest.mark.skipif(not shutil.which(CURL), reason="curl is not installed")
@pytest.mark.parametrize("version", ["--http1.1", "--http2-prior-knowledge"])
def test_curl(version: str, flask_app: flask.Flask, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(BIG)

    def curl(url: str, *args: str) -> tuple[bytes, str]:
        done = subprocess.run(
            [
                CURL,
                version,
                "-s",
                "-S",
                "--max-time",
                "20",
                "-w",
                "\n%{http_code} %{http_version}",
                *args,
                url,
            ],
            capture_output=True,
            timeout=30,
            check=True,
        )
        body, _, meta = done.stdout.rpartition(b"\n")
        return body, meta.decode()

    expected = "1.1" if version == "--http1.1" else "2"
    with Server(WSGIAdapter(flask_app), port=0) as server:
        assert curl(server.url + "/") == (b"Hello, world!", f"200 {expected}")
        body, meta = curl(server.url + "/echo", "--data-binary", f"@{big}")
        assert meta == f"200 {expected}"
        assert body == BIG


def test_write_misuse(caplog: pytest.LogCaptureFixture) -> None:
    def writes_text(environ: Environ, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])("text")
        return [b""]

    response = WSGIAdapter(writes_text)(Request("GET", "http://h/"))
    assert response.status == 500

    class WritesOnClose(Tracked):
        def close(self) -> None:
            super().close()
            self.write(b"too late")

    body = WritesOnClose([b"a", b"", b"b"])

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        body.write = start_response("200 OK", [])  # type: ignore[attr-defined]
        return body

    caplog.clear()
    response = WSGIAdapter(app)(Request("GET", "http://h/"))
    assert response.read() == b"ab"  # the empty chunk is skipped
    assert body.closes == 1
    failures = errors_logged(caplog)
    assert len(failures) == 1 and "close() failed" in failures[0].getMessage()
    assert "after the response ended" in str(failures[0].exc_info[1])  # type: ignore[index]


def test_transport_errors_are_the_servers_affair(caplog: pytest.LogCaptureFixture) -> None:
    """A failed read of the request is neither a 500 nor an app error to log."""

    def reads(environ: Environ, start_response: Any) -> Iterable[bytes]:
        raise TransportError("the client went away")

    with pytest.raises(TransportError):
        WSGIAdapter(reads)(Request("POST", "http://h/"))

    class ReadFails(Tracked):
        def __next__(self) -> bytes:
            if self.produced:
                raise TransportError("the client went away")
            return super().__next__()

    body = ReadFails([b"a", b"b"])
    response = WSGIAdapter(tracked_app(body))(Request("GET", "http://h/"))
    chunks = response.iter_bytes()
    assert next(chunks) == b"a"
    with pytest.raises(TransportError):
        next(chunks)
    assert body.closes == 1
    assert not errors_logged(caplog)
