"""nginx in front of ``hyperpy serve``: the reverse-proxy set-up of docs/deploy.md, run.

The nginx configuration is the block docs/deploy.md shows, read from the page; only
its listening ports, upstream address and certificate paths are replaced. nginx ends
TLS on a free loopback port and proxies to ``hyperpy serve`` running
``tests/apps/deploy_app.py``, once as a Flask (WSGI) app and once as a Starlette
(ASGI) app, with ``--proxy-headers``.

Skipped when nginx is missing outside CI; under CI (``CI=true``) a missing binary
fails, so that a missing install step cannot go unnoticed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from apps.deploy_app import SLOW_STARTED
from apps.running import REPO, Served, wait_until
from peers import interop, require
from processes import accepts, free_port, stop

import hyperpy

DOC = REPO / "docs" / "deploy.md"
DOC_MARKER = "<!-- tests/interop/test_nginx.py runs the nginx block below"
APPS = {"wsgi": "tests.apps.deploy_app:wsgi", "asgi": "tests.apps.deploy_app:asgi"}
# ``hyperpy serve`` runs an ASGI app on the trio AsyncServer, a WSGI app on the
# threaded Server: the world each interface proves.
INTERFACES = {"async": "asgi", "sync": "wsgi"}
WORLDS = sorted(INTERFACES)
# The upstream's flags, as docs/deploy.md runs it (the test checks that the page does).
PROXY_FLAGS = ["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]
KEEP_ALIVE_FLAGS = ["--keep-alive-timeout", "75"]

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
# A free port found by binding and releasing it may be taken before nginx binds it.
START_ATTEMPTS = 3
REQUEST_TIMEOUT = 15.0
MIB = bytes(range(256)) * 4096

# nginx is the client here: it speaks HTTP/1.1 to hyperpy (proxy_http_version 1.1).
THROUGH_NGINX = interop("nginx", "HTTP/1.1", role="server")


# -- nginx ------------------------------------------------------------------------------


def _nginx_binary() -> str:
    return require("nginx")


def doc_config() -> str:
    """The nginx block of docs/deploy.md, as the page shows it."""
    text = DOC.read_text(encoding="utf-8")
    _, marker, after = text.partition(DOC_MARKER)
    assert marker, f"{DOC}: the marker {DOC_MARKER!r} is gone"
    match = re.search(r"```nginx\n(.*?)```", after, re.DOTALL)
    assert match is not None, f"{DOC}: no ```nginx block after the marker"
    return match.group(1)


def _replace(config: str, old: str, new: str) -> str:
    # Exactly once: if the page changes shape, this says where, rather than nginx
    # starting with the page's example ports and paths.
    count = config.count(old)
    assert count == 1, f"docs/deploy.md's nginx block has {old!r} {count} times, expected once"
    return config.replace(old, new)


def site_config(upstream: str, https_port: int, http_port: int, cert: Path, key: Path) -> str:
    """The page's configuration for this run: ``upstream`` is ``127.0.0.1:PORT`` or
    ``unix:PATH``."""
    config = doc_config()
    config = _replace(config, "server 127.0.0.1:8000;", f"server {upstream};")
    config = _replace(config, "listen 80;", f"listen 127.0.0.1:{http_port};")
    config = _replace(config, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    config = re.sub(r"ssl_certificate +\S+;", f"ssl_certificate {cert};", config)
    return re.sub(r"ssl_certificate_key +\S+;", f"ssl_certificate_key {key};", config)


def _main_config(directory: Path, site: str, binary: str) -> str:
    """nginx.conf around ``site``: every file nginx writes is in ``directory``."""
    # As root, the workers would switch to "nobody", which cannot enter the
    # test's private temporary directories; as anyone else, "user" only warns.
    user = "user root;\n" if os.geteuid() == 0 else ""
    built = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10).stderr
    temp_paths = "".join(
        f"    {name}_temp_path {directory / name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        # A module built out has no directive to set (and no default path to create).
        if f"--without-http_{name}_module" not in built
    )
    return (
        f"{user}"
        "daemon off;\n"
        "master_process on;\n"
        "worker_processes 1;\n"
        f"pid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} info;\n"
        "events {\n    worker_connections 256;\n}\n"
        "http {\n"
        f"    access_log {directory / 'access.log'};\n"
        f"{temp_paths}"
        "    default_type application/octet-stream;\n"
        f"{site}\n"
        "}\n"
    )


@dataclass
class Nginx:
    """A running nginx: its HTTPS and plain-HTTP ports and its files."""

    https_port: int
    http_port: int
    directory: Path

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.https_port}{path}"

    def logs(self) -> str:
        parts = []
        for name in ("error.log", "output.txt"):
            path = self.directory / name
            if path.exists():
                parts.append(f"--- nginx {name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)


def _start_nginx(
    binary: str, directory: Path, upstream: str, cert: Path, key: Path
) -> tuple[subprocess.Popen[bytes] | None, Nginx]:
    """nginx on two free ports, listening; None if it exited without listening."""
    nginx = Nginx(free_port(), free_port(), directory)
    site = site_config(upstream, nginx.https_port, nginx.http_port, cert, key)
    conf = directory / "nginx.conf"
    conf.write_text(_main_config(directory, site, binary))
    command = [binary, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")]
    # Output before the error log is open goes to a file: a pipe nobody reads could fill.
    with open(directory / "output.txt", "ab") as output:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_until(
            lambda: (
                process.poll() is not None
                or (accepts(nginx.https_port) and accepts(nginx.http_port))
            ),
            START_TIMEOUT,
        )
    except BaseException:
        stop(process, signal.SIGQUIT, STOP_TIMEOUT)
        raise
    if process.poll() is None and accepts(nginx.https_port):
        return process, nginx
    stop(process, signal.SIGQUIT, STOP_TIMEOUT)
    return None, nginx


@contextlib.contextmanager
def run_nginx(upstream: str, cert: Path, key: Path) -> Iterator[Nginx]:
    """nginx with docs/deploy.md's configuration, proxying to ``upstream``."""
    binary = _nginx_binary()
    with tempfile.TemporaryDirectory(prefix="nginx-") as name:
        directory = Path(name)
        for _ in range(START_ATTEMPTS):
            process, nginx = _start_nginx(binary, directory, upstream, cert, key)
            if process is not None:
                break
            if "Address already in use" not in nginx.logs():
                pytest.fail(f"nginx did not start\n{nginx.logs()}", pytrace=False)
        else:
            pytest.fail(f"nginx found no free port\n{nginx.logs()}", pytrace=False)
        assert process is not None
        try:
            yield nginx
        finally:
            stop(process, signal.SIGQUIT, STOP_TIMEOUT)


# -- the stack: nginx in front of hyperpy serve -----------------------------------------


@dataclass
class Stack:
    """nginx in front of a ``hyperpy serve`` process serving the ``interface`` app."""

    interface: str
    served: Served
    nginx: Nginx

    def url(self, path: str) -> str:
        return self.nginx.url(path)

    @property
    def upstream_port(self) -> int:
        return int(self.served.url.rsplit(":", 1)[1])

    def logs(self) -> str:
        return (
            f"--- hyperpy stdout\n{self.served.stdout.text[-4000:]}\n"
            f"--- hyperpy stderr\n{self.served.stderr.text[-4000:]}\n{self.nginx.logs()}"
        )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as files for nginx."""
    directory = tmp_path_factory.mktemp("nginx-cert")
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = directory / "cert.pem", directory / "key.pem"
    for blob in issued.cert_chain_pems:
        blob.write_to_path(cert, append=True)
    issued.private_key_pem.write_to_path(key)
    return cert, key


@contextlib.contextmanager
def run_stack(
    interface: str, certificate: tuple[Path, Path], args: list[str] | None = None
) -> Iterator[Stack]:
    """``hyperpy serve`` with ``args`` (default: a free TCP port, the documented
    proxy flags), and nginx in front of it."""
    _nginx_binary()  # skip before starting anything
    if args is None:
        args = ["--port", "0", *PROXY_FLAGS, *KEEP_ALIVE_FLAGS]
    with Served([APPS[interface], *args]) as served:
        upstream = served.url.removeprefix("http://")  # unix:PATH stays as it is
        with run_nginx(upstream, *certificate) as nginx:
            yield Stack(interface, served, nginx)


@pytest.fixture(scope="module", params=WORLDS)
def world(request: pytest.FixtureRequest) -> str:
    """The hyperpy server under nginx: "async" (ASGI on trio) or "sync" (WSGI)."""
    return str(request.param)


@pytest.fixture(scope="module")
def stack(world: str, certificate: tuple[Path, Path]) -> Iterator[Stack]:
    """Shared by the tests that leave both processes running."""
    with run_stack(INTERFACES[world], certificate) as running:
        yield running


@pytest.fixture
def client(client_ssl_context: ssl.SSLContext) -> Iterator[hyperpy.Client]:
    with hyperpy.Client(verify=client_ssl_context, timeout=REQUEST_TIMEOUT) as client:
        yield client


def test_the_page_runs_hyperpy_as_the_test_does() -> None:
    # The flags every stack below runs with, in each world, are the page's.
    text = DOC.read_text(encoding="utf-8")
    for flags in (PROXY_FLAGS, KEEP_ALIVE_FLAGS):
        assert " ".join(flags) in text


# -- through nginx ----------------------------------------------------------------------


@THROUGH_NGINX
def test_requests_through_nginx(stack: Stack, client: hyperpy.Client) -> None:
    port = stack.nginx.https_port
    response = client.get(stack.url("/healthz"))
    assert (response.status_code, response.text) == (200, "ok"), stack.logs()

    # TLS ends at nginx: the app learns the scheme and port from the forwarded headers.
    seen = client.get(stack.url("/whoami?x=1")).json()
    assert seen == {
        "client": "127.0.0.1",
        "scheme": "https",
        "host": f"127.0.0.1:{port}",
        "url": f"https://127.0.0.1:{port}/whoami?x=1",
        "root_path": "",
        "http_version": "1.1",
    }

    response = client.post(stack.url("/echo"), content=MIB)
    assert response.status_code == 200
    assert response.content == MIB

    # Port 80 only redirects, to the host without its port (the page's "return 301").
    response = client.get(f"http://127.0.0.1:{stack.nginx.http_port}/whoami?x=1")
    assert response.status_code == 301
    assert response.headers["location"] == "https://127.0.0.1/whoami?x=1"


@THROUGH_NGINX
def test_http2_to_nginx_is_http11_to_hyperpy(
    stack: Stack, h2_client_ssl_context: ssl.SSLContext
) -> None:
    with hyperpy.Client(verify=h2_client_ssl_context, http2=True, timeout=REQUEST_TIMEOUT) as h2:
        response = h2.get(stack.url("/whoami"))
    assert response.http_version == "2"
    assert response.json()["http_version"] == "1.1"
    assert response.json()["scheme"] == "https"


@THROUGH_NGINX
def test_forwarded_headers_from_the_client_are_not_believed(
    stack: Stack, client_ssl_context: ssl.SSLContext
) -> None:
    # From 127.0.0.2, an address hyperpy does not trust, so that the client's own
    # address is the one to come out, and what it prepends is never reached.
    port = stack.nginx.https_port
    connection = http.client.HTTPSConnection(
        "127.0.0.1",
        port,
        timeout=REQUEST_TIMEOUT,
        context=client_ssl_context,
        source_address=("127.0.0.2", 0),
    )
    forged = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Port": "81",
        "Forwarded": "for=203.0.113.9;proto=http;host=evil.example",
    }
    try:
        connection.request("GET", "/whoami", headers=forged)
    except OSError as exc:
        pytest.skip(f"cannot connect from 127.0.0.2: {exc}")
    try:
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 200, body
    seen = json.loads(body)
    assert (seen["client"], seen["scheme"], seen["host"]) == (
        "127.0.0.2",
        "https",
        f"127.0.0.1:{port}",
    )


@THROUGH_NGINX
def test_streamed_response_arrives_in_pieces(stack: Stack, client: hyperpy.Client) -> None:
    # /events/ is the page's unbuffered location: with nginx's buffering, the ticks
    # would arrive together at the end.
    count, delay = 4, 0.5
    arrivals: list[tuple[float, bytes]] = []
    with client.stream("GET", stack.url(f"/events/ticks?n={count}&delay={delay}")) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            arrivals.append((time.monotonic(), chunk))
    body = b"".join(chunk for _, chunk in arrivals)
    assert body == b"".join(f"tick {i}\n".encode() for i in range(count))
    first_tick = next(at for at, chunk in arrivals if chunk)
    # The last tick comes (count - 1) * delay after the first; buffered, both at once.
    assert arrivals[-1][0] - first_tick >= (count - 1) * delay * 0.6, arrivals


def _upstream_connections(port: int) -> tuple[set[int], set[int]]:
    """The client-side ports of TCP connections to 127.0.0.1:``port`` the kernel still
    knows of (established, closing, or in TIME_WAIT for a minute after), and of
    those the ones established."""
    seen: set[int] = set()
    established: set[int] = set()
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, state = int(fields[1][-4:], 16), int(fields[2][-4:], 16), fields[3]
            if state == "0A":  # LISTEN
                continue
            # Both ends are on this host: count each connection by nginx's port,
            # whichever end's entry is left.
            if local == port:
                other = remote
            elif remote == port:
                other = local
            else:
                continue
            seen.add(other)
            if state == "01":
                established.add(other)
    return seen, established


@THROUGH_NGINX
def test_upstream_connections_are_kept_alive(stack: Stack, client: hyperpy.Client) -> None:
    # The app cannot tell: with --proxy-headers it sees the forwarded client, port 0.
    # The kernel can: every TCP connection nginx opened to hyperpy stays in its table,
    # in TIME_WAIT, for a minute after it closed. Without keep-alive, each request
    # here would leave one; with it, one connection carries them all.
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("needs Linux's /proc/net/tcp")
    port = stack.upstream_port
    before, _ = _upstream_connections(port)
    for i in range(50):
        response = client.get(stack.url(f"/healthz?i={i}"))
        assert response.status_code == 200
    after, established = _upstream_connections(port)
    opened = after - before
    assert len(opened) <= 2, f"{len(opened)} upstream connections for 50 requests"
    # And it stays open, idle in nginx's cache, for the next request.
    assert established, "no upstream connection left open"


@interop("nginx", "WebSocket", role="server")
@pytest.mark.parametrize("world", ["async"], indirect=True)  # WSGI has no WebSockets
def test_websocket_through_nginx(stack: Stack, client: hyperpy.Client) -> None:
    assert stack.interface == "asgi"
    with client.websocket(stack.url("/ws").replace("https:", "wss:", 1)) as ws:
        ws.send_text("hello")
        assert ws.receive_text(timeout=REQUEST_TIMEOUT) == "hello"
        ws.send_bytes(MIB[:65536])
        assert ws.receive_bytes(timeout=REQUEST_TIMEOUT) == MIB[:65536]


# -- stacks of their own ----------------------------------------------------------------


@THROUGH_NGINX
@pytest.mark.parametrize("world", WORLDS)
def test_sigterm_drains_the_request_in_flight(
    world: str, certificate: tuple[Path, Path], client: hyperpy.Client
) -> None:
    with run_stack(INTERFACES[world], certificate) as stack:
        outcome: dict[str, Any] = {}

        def slow_request() -> None:
            try:
                outcome["response"] = client.get(stack.url("/slow?delay=2"))
            except Exception as exc:  # reported by the assertion below
                outcome["error"] = exc

        thread = threading.Thread(target=slow_request, daemon=True)
        thread.start()
        started = stack.served.stderr.wait_for(re.escape(SLOW_STARTED), REQUEST_TIMEOUT)
        assert started is not None, stack.logs()

        stack.served.send(signal.SIGTERM)
        # It stops accepting at once: nginx now fails to reach it (502), which is why
        # a balancer must stop sending to a host before it is signalled.
        port = stack.upstream_port
        assert wait_until(lambda: not accepts(port), STOP_TIMEOUT), stack.logs()
        assert client.get(stack.url("/healthz")).status_code == 502

        thread.join(REQUEST_TIMEOUT)
        assert not thread.is_alive(), stack.logs()
        assert "error" not in outcome, f"{outcome.get('error')!r}\n{stack.logs()}"
        response = outcome["response"]
        assert (response.status_code, response.text) == (200, "done"), stack.logs()
        assert stack.served.wait(REQUEST_TIMEOUT) == 0, stack.logs()


@THROUGH_NGINX
@pytest.mark.parametrize("world", WORLDS)
def test_unix_socket_upstream_with_a_root_path(
    world: str, certificate: tuple[Path, Path], client: hyperpy.Client
) -> None:
    # A short directory: a Unix socket's path is limited to about 100 bytes.
    with tempfile.TemporaryDirectory(prefix="hp-") as name:
        path = os.path.join(name, "app.sock")
        # nginx passes the path whole (location /); the app routes without the prefix.
        args = ["--uds", path, "--proxy-headers", "--forwarded-allow-ips", "unix"]
        with run_stack(INTERFACES[world], certificate, [*args, "--root-path", "/app"]) as stack:
            port = stack.nginx.https_port
            response = client.get(stack.url("/app/healthz"))
            assert (response.status_code, response.text) == (200, "ok"), stack.logs()
            seen = client.get(stack.url("/app/whoami")).json()
            assert seen["client"] == "127.0.0.1"
            assert seen["scheme"] == "https"
            assert seen["url"] == f"https://127.0.0.1:{port}/app/whoami"
            assert seen["root_path"] == "/app"
