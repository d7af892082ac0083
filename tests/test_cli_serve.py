"""``hyperpy serve`` as a real process: Flask and Starlette apps over HTTP/1.1, h2c and
TLS with HTTP/2, reached by the hyperpy client and by curl; WebSockets, the ASGI
lifespan, Unix sockets, inherited sockets, the access log and proxy headers."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from apps.running import Served
from websockets.sync.client import connect

import hyperpy

CURL = shutil.which("curl") or "curl"
needs_curl = pytest.mark.skipif(
    shutil.which("curl") is None and not os.environ.get("CI"), reason="curl is not installed"
)
APPS = {"flask": "tests.apps.flask_app:app", "starlette": "tests.apps.starlette_app:app"}
BIG = bytes(range(256)) * 4096  # 1 MiB
STREAMED = b"".join(f"chunk {i}\n".encode() for i in range(5))
ACCESS_LINE = re.compile(
    r"^(?P<client>\S+) - - \[(?P<time>\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} \+0000)\] "
    r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/(?P<version>[\d.]+)" (?P<status>\d{3}) '
    r'(?P<sent>\d+) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)" (?P<seconds>\d+\.\d+)$'
)


@dataclass
class TLSFiles:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    where = tmp_path_factory.mktemp("tls")
    files = TLSFiles(where / "ca.pem", where / "cert.pem", where / "key.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(files.cert), append=True)
    cert.private_key_pem.write_to_path(str(files.key))
    return files


@dataclass
class Running:
    app: str
    tls: bool
    server: Served
    ca: Path


@pytest.fixture(
    scope="module",
    params=[("flask", False), ("flask", True), ("starlette", False), ("starlette", True)],
    ids=["flask", "flask-tls", "starlette", "starlette-tls"],
)
def running(request: pytest.FixtureRequest, tls_files: TLSFiles) -> Iterator[Running]:
    app, tls = request.param
    args = [APPS[app], "--port", "0", "--no-access-log"]
    if tls:
        args += ["--certfile", str(tls_files.cert), "--keyfile", str(tls_files.key)]
    with Served(args) as server:
        yield Running(app, tls, server, tls_files.ca)
        assert server.stop() == 0, server.stderr.text


def _client(running: Running, protocol: str) -> hyperpy.Client:
    timeout = hyperpy.Timeout(10.0)
    if running.tls:
        return hyperpy.Client(http2=protocol == "h2", verify=str(running.ca), timeout=timeout)
    return hyperpy.Client(http2_prior_knowledge=protocol == "h2", timeout=timeout)


def _curl(running: Running, protocol: str, path: str, *args: str) -> tuple[bytes, int, str]:
    """curl's body, status and HTTP version for ``path``."""
    if protocol == "h1":
        version = ["--http1.1"]
    else:
        version = ["--http2"] if running.tls else ["--http2-prior-knowledge"]
    tls = ["--cacert", str(running.ca)] if running.tls else []
    command = [CURL, "-sS", "--max-time", "20", *version, *tls]
    command += ["-w", "\n--curl--\n%{http_code} %{http_version}", *args]
    done = subprocess.run(
        [*command, running.server.url + path], capture_output=True, timeout=30, check=True
    )
    body, _, meta = done.stdout.rpartition(b"\n--curl--\n")
    status, http_version = meta.decode().split()
    return body, int(status), http_version


def _expected_version(protocol: str) -> str:
    return "2" if protocol == "h2" else "1.1"


PROTOCOLS = pytest.mark.parametrize("protocol", ["h1", "h2"])


@PROTOCOLS
def test_get_with_the_hyperpy_client(running: Running, protocol: str) -> None:
    assert running.server.url.startswith("https://" if running.tls else "http://")
    with _client(running, protocol) as client:
        response = client.get(running.server.url + "/")
    assert response.status == 200
    assert response.text == f"hello from {running.app}"
    assert response.http_version == _expected_version(protocol)


@PROTOCOLS
def test_post_echo_of_a_megabyte_with_the_hyperpy_client(running: Running, protocol: str) -> None:
    with _client(running, protocol) as client:
        response = client.post(running.server.url + "/echo", content=BIG)
    assert response.status == 200
    assert response.content == BIG
    assert response.http_version == _expected_version(protocol)


@PROTOCOLS
def test_streamed_response_with_the_hyperpy_client(running: Running, protocol: str) -> None:
    with (
        _client(running, protocol) as client,
        client.stream("GET", running.server.url + "/stream") as response,
    ):
        chunks = list(response.iter_bytes())
    assert response.status == 200
    assert b"".join(chunks) == STREAMED
    if protocol == "h1":
        assert response.headers.get("transfer-encoding") == "chunked"


@needs_curl
@PROTOCOLS
def test_get_with_curl(running: Running, protocol: str) -> None:
    body, status, version = _curl(running, protocol, "/")
    assert (status, body) == (200, f"hello from {running.app}".encode())
    assert version == _expected_version(protocol)


@needs_curl
@PROTOCOLS
def test_post_echo_of_a_megabyte_with_curl(running: Running, protocol: str, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(BIG)
    body, status, version = _curl(running, protocol, "/echo", "--data-binary", f"@{big}")
    assert (status, version) == (200, _expected_version(protocol))
    assert body == BIG


@needs_curl
@PROTOCOLS
def test_streamed_response_with_curl(running: Running, protocol: str) -> None:
    body, status, version = _curl(running, protocol, "/stream")
    assert (status, body, version) == (200, STREAMED, _expected_version(protocol))


STARLETTE_ONLY = pytest.mark.parametrize(
    "running", [("starlette", False), ("starlette", True)], indirect=True, ids=["h1", "tls"]
)


@STARLETTE_ONLY
def test_starlette_lifespan_ran_before_the_first_request(running: Running) -> None:
    with _client(running, "h1") as client:
        assert client.get(running.server.url + "/lifespan").text == "started"


@STARLETTE_ONLY
def test_starlette_websocket_echo(running: Running) -> None:
    url = running.server.url.replace("http", "ws", 1) + "/ws"
    context = None
    if running.tls:
        context = ssl.create_default_context(cafile=str(running.ca))
    with connect(url, compression=None, ssl=context, open_timeout=10) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send(b"\x00\x01binary")
        assert ws.recv(timeout=10) == b"\x00\x01binary"


# -- where it listens -------------------------------------------------------------------


@needs_curl
@pytest.mark.parametrize("app", ["tests.apps.slow:app", "tests.apps.flask_app:app"])
def test_unix_socket(tmp_path: Path, app: str) -> None:
    path = tmp_path / "hyperpy.sock"
    with Served([app, "--uds", str(path)]) as server:
        assert server.url == f"unix:{path}"
        done = subprocess.run(
            [CURL, "-sS", "--max-time", "10", "--unix-socket", str(path), "http://localhost/"],
            capture_output=True,
            timeout=20,
            check=True,
        )
        assert done.stdout.startswith(b"hello from")
        assert server.stop() == 0
    assert not path.exists()  # the socket file goes with the server


def test_inherited_listening_socket() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    fd = listener.fileno()
    process = subprocess.Popen(
        [sys.executable, "-m", "hyperpy", "serve", "tests.apps.slow:app", "--fd", str(fd)],
        pass_fds=(fd,),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        listener.close()  # the server holds its own copy
        assert process.stdout is not None
        assert f"127.0.0.1:{port}" in process.stdout.readline()
        with hyperpy.Client(timeout=hyperpy.Timeout(10.0)) as client:
            assert client.get(f"http://127.0.0.1:{port}/").text == "hello from hyperpy"
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors


# -- logs -------------------------------------------------------------------------------


@pytest.mark.parametrize("app", ["tests.apps.slow:app", "tests.apps.slow:sync_app"])
def test_access_log_line_per_request_on_stdout(app: str) -> None:
    with Served([app, "--port", "0"]) as server:
        with hyperpy.Client(timeout=hyperpy.Timeout(10.0)) as client:
            client.get(server.url + "/pid", headers={"user-agent": "probe/1", "referer": "/r"})
            client.get(server.url + "/slow?delay=0.1")
            client.post(server.url + "/missing", content=b"x")
        with hyperpy.Client(http2_prior_knowledge=True) as client:
            client.get(server.url + "/")
        assert server.stop() == 0
    lines = server.stdout.lines[1:]  # after "hyperpy serving on ..."
    assert len(lines) == 4, server.stdout.text
    parsed = [ACCESS_LINE.match(line) for line in lines]
    assert all(parsed), lines
    first, slow, post, h2 = (match.groupdict() for match in parsed if match)
    assert first["client"] == "127.0.0.1"
    assert (first["method"], first["target"], first["version"]) == ("GET", "/pid", "1.1")
    assert (first["status"], first["agent"], first["referer"]) == ("200", "probe/1", "/r")
    assert first["sent"] == str(len(str(server.pid)))  # the body: the pid, in one worker
    assert slow["target"] == "/slow?delay=0.1" and float(slow["seconds"]) >= 0.1
    assert (post["method"], post["status"]) == ("POST", "200")
    assert h2["version"] == "2"
    # Nothing but the access lines on stdout; the interface line is on stderr.
    assert "interface hyperpy" in server.stderr.text


def test_no_access_log() -> None:
    with Served(["tests.apps.slow:app", "--port", "0", "--no-access-log"]) as server:
        with hyperpy.Client() as client:
            for _ in range(3):
                assert client.get(server.url + "/").status == 200
        assert server.stop() == 0
    assert server.stdout.lines == [server.stdout.lines[0]]
    assert "hyperpy serving on" in server.stdout.lines[0]


def test_log_config_replaces_the_defaults(tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    config = {
        "version": 1,
        "formatters": {"plain": {"format": "ACCESS %(message)s"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(access), "formatter": "plain"}
        },
        "loggers": {"hyperpy.access": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    with Served(["tests.apps.slow:app", "--port", "0", "--log-config", str(path)]) as server:
        with hyperpy.Client() as client:
            client.get(server.url + "/hi")
        assert server.stop() == 0
    assert len(server.stdout.lines) == 1  # the announcement only
    line = access.read_text().strip()
    assert line.startswith("ACCESS 127.0.0.1 - - [")
    assert ACCESS_LINE.match(line[len("ACCESS ") :])


def test_log_config_that_cannot_be_used(tmp_path: Path) -> None:
    path = tmp_path / "logging.json"
    path.write_text("{not json")
    with Served(["tests.apps.slow:app", "--log-config", str(path)], wait=False) as server:
        assert server.wait() == 2
    assert f"error: --log-config {path}" in server.stderr.text


# -- behind a proxy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "app", ["tests.apps.slow:app", "tests.apps.flask_app:app", "tests.apps.starlette_app:app"]
)
def test_proxy_headers_from_a_trusted_proxy(app: str) -> None:
    forwarded = {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}
    with Served([app, "--port", "0", "--proxy-headers"]) as server, hyperpy.Client() as client:
        assert client.get(server.url + "/client", headers=forwarded).text == "203.0.113.7 https"
        assert client.get(server.url + "/client").text == "127.0.0.1 http"


def test_proxy_headers_are_ignored_unless_asked_for_or_trusted() -> None:
    forwarded = {"x-forwarded-for": "203.0.113.7"}
    with Served(["tests.apps.slow:app", "--port", "0"]) as server, hyperpy.Client() as client:
        assert client.get(server.url + "/client", headers=forwarded).text == "127.0.0.1 http"
    untrusted = ["--proxy-headers", "--forwarded-allow-ips", "10.0.0.1"]
    with Served(["tests.apps.slow:app", "--port", "0", *untrusted]) as server:
        with hyperpy.Client() as client:
            answer = client.get(server.url + "/client", headers=forwarded).text
        assert answer == "127.0.0.1 http"


def test_forwarded_allow_ips_from_the_environment() -> None:
    env = dict(os.environ, FORWARDED_ALLOW_IPS="10.0.0.1")
    forwarded = {"x-forwarded-for": "203.0.113.7"}
    args = ["tests.apps.slow:app", "--port", "0", "--proxy-headers"]
    with Served(args, env=env) as server, hyperpy.Client() as client:
        assert client.get(server.url + "/client", headers=forwarded).text == "127.0.0.1 http"


# -- interfaces -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "message"),
    [
        (
            "tests.apps.starlette_app:app",
            "hyperpy: interface asgi (async callable taking scope, receive, send), trio server",
        ),
        (
            "tests.apps.flask_app:app",
            "hyperpy: interface wsgi (callable taking environ, start_response), threaded server",
        ),
        (
            "tests.apps.slow:app",
            "hyperpy: interface hyperpy (async callable taking request), trio server",
        ),
        (
            "tests.apps.slow:sync_app",
            "hyperpy: interface hyperpy (callable taking request), threaded server",
        ),
        ("", "hyperpy: interface hyperpy (async callable taking request), trio server"),
    ],
    ids=["asgi", "wsgi", "hyperpy-trio", "hyperpy-threads", "demo"],
)
def test_interface_detection_is_told_on_stderr(app: str, message: str) -> None:
    args = [app] if app else []
    with Served([*args, "--port", "0"]) as server:
        assert server.stderr.wait_for(re.escape(message), 5), server.stderr.text
        flavour = "threads" if "threaded" in message else "trio"
        assert server.stdout.lines[0].endswith(f"({flavour})")
        with hyperpy.Client() as client:
            assert client.get(server.url + "/").status == 200
        assert server.stop() == 0


def test_sync_demo_stays() -> None:
    with Served(["--sync", "--port", "0"]) as server, hyperpy.Client() as client:
        assert server.stdout.lines[0].endswith("(threads)")
        assert client.get(server.url + "/").text == "Hello, world!"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["tests.apps.odd:anything"], "could take 1 or 2 arguments"),
        (["tests.apps.odd:four"], "pass --interface asgi, wsgi or hyperpy"),
        (["tests.apps.odd:not_callable"], "is not callable"),
        (["tests.apps.odd:AppClass"], "is a class"),
        (["tests.apps.odd:missing"], "has no attribute 'missing'"),
        (["tests.apps.nowhere:app"], "cannot import 'tests.apps.nowhere'"),
        (["tests.apps.slow:app", "--sync"], "--sync needs a plain `def app(request)`"),
        (["tests.apps.starlette_app:app", "--sync"], "--sync is for native handlers"),
        (["tests.apps.slow:app", "--root-path", "/x"], "--root-path is for ASGI and WSGI"),
        (["tests.apps.slow:app", "--certfile", "/nonexistent.pem"], "cannot load the certif"),
    ],
)
def test_apps_that_cannot_be_served(args: list[str], error: str) -> None:
    with Served([*args, "--port", "0"], wait=False) as server:
        assert server.wait() == 2
    assert "error: " in server.stderr.text and error in server.stderr.text, server.stderr.text
    assert "Traceback" not in server.stderr.text


def test_interface_can_be_forced() -> None:
    args = ["tests.apps.odd:anything", "--interface", "wsgi", "--port", "0"]
    with Served(args) as server:
        assert server.stderr.wait_for(r"interface wsgi \(as --interface says\)", 5)


def test_port_in_use() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        with Served(["tests.apps.slow:app", "--port", port], wait=False) as server:
            assert server.wait() == 2
    assert "error: cannot listen" in server.stderr.text


def test_failed_lifespan_startup_exits_3(tmp_path: Path) -> None:
    (tmp_path / "broken_lifespan.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] == 'lifespan':\n"
        "        await receive()\n"
        "        await send({'type': 'lifespan.startup.failed', 'message': 'no database'})\n"
    )
    with Served(["broken_lifespan:app", "--port", "0"], cwd=tmp_path, wait=False) as server:
        assert server.wait() == 3
    assert "error: the app failed to start" in server.stderr.text
    assert "no database" in server.stderr.text
