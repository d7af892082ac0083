"""A real browser: headless Chromium loads a page and its 40 subresources over HTTP/2.

The page pulls in stylesheets, images and scripts that write text into the DOM,
and carries preconnect hints that make Chromium open speculative connections it
drops unused. The server side checks that every request came over HTTP/2 on one
connection; the browser side (``--dump-dom``) that the page rendered: the
scripts ran, the stylesheets applied, the images decoded, all over h2. Neither
the speculative connections nor anything else may leave a warning or an error in
the ``hyperpy`` logs. Chromium trusts the trustme certificate through the
SHA-256 pin of its public key (``--ignore-certificate-errors-spki-list``).

A second test replays, with plain sockets, how a browser drops connections
(before, during and right after the TLS handshake), so that the quiet log does
not depend on what a given Chromium version happens to do.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from peers import interop, require

from hyperpy import AsyncClient, AsyncServer, Client, Request, Response, Server
from hyperpy._backends import (
    AsyncSocketNetwork,
    AsyncSocketStream,
    SyncSocketNetwork,
    SyncSocketStream,
)

TIMEOUT = 30  # seconds: one browser run, start to exit
STYLESHEETS, IMAGES, SCRIPTS = 10, 10, 20  # 40 subresources

# -- the page --------------------------------------------------------------------------


def _page(port: int) -> str:
    """The page: stylesheets in the head, then images, then scripts that write into it.

    Each parser-blocking script waits for the stylesheets before it runs, so the last
    inline script sees every rule applied; the images are counted at the load event,
    with the protocol every resource came over (Resource Timing's nextHopProtocol).
    """
    head = [
        "<!doctype html><html><head><meta charset=utf-8><title>hyperpy over h2</title>",
        '<link rel="icon" href="data:,">',  # no favicon request after load
        # Speculative connections the page never uses: one to this origin in the
        # anonymous (no-credentials) pool, one to the same server under another name.
        '<link rel="preconnect" href="/" crossorigin>',
        f'<link rel="preconnect" href="https://localhost:{port}/">',
    ]
    head += [f'<link rel="stylesheet" href="/css/{i}.css">' for i in range(STYLESHEETS)]
    body = ['</head><body><p id="out"></p><p id="styles"></p><p id="load"></p>']
    body += [f'<img src="/img/{i}.svg" alt="">' for i in range(IMAGES)]
    body += [f'<script src="/js/{i}.js"></script>' for i in range(SCRIPTS)]
    body.append(
        "<script>"
        "let styled = 0;"
        f"for (let i = 0; i < {STYLESHEETS}; i++) {{"
        "  const probe = document.createElement('span');"
        "  probe.className = 'probe' + i; document.body.appendChild(probe);"
        "  if (getComputedStyle(probe).width === (i + 1) + 'px') styled++;"
        "  probe.remove();"
        "}"
        "document.getElementById('styles').textContent = 'styles-applied:' + styled;"
        "window.addEventListener('load', () => {"
        "  const images = [...document.images].filter(i => i.complete && i.naturalWidth > 0);"
        "  const protocols = [performance.getEntriesByType('navigation')[0],"
        "    ...performance.getEntriesByType('resource')].map(e => e.nextHopProtocol);"
        "  document.getElementById('load').textContent ="
        "    'images-decoded:' + images.length + ' protocols:' + [...new Set(protocols)]"
        "    + ' entries:' + protocols.length;"
        "});"
        "</script></body></html>"
    )
    return "".join(head + body)


def _expected_paths() -> list[str]:
    return (
        ["/"]
        + [f"/css/{i}.css" for i in range(STYLESHEETS)]
        + [f"/img/{i}.svg" for i in range(IMAGES)]
        + [f"/js/{i}.js" for i in range(SCRIPTS)]
    )


@dataclass
class Seen:
    """What reached the handler: (path, HTTP version, client address) per request."""

    requests: list[tuple[str, str, tuple[str, int] | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def respond(self, request: Request, port: int) -> Response:
        with self.lock:
            self.requests.append((request.path, request.http_version, request.client))
        path = request.path
        if path == "/":
            return _typed(_page(port), "text/html; charset=utf-8")
        number = re.fullmatch(r"/(css|img|js)/(\d+)\.(css|svg|js)", path)
        if number is None:
            return Response(404, text="not found\n")
        kind, i = number.group(1), int(number.group(2))
        if kind == "css":
            return _typed(f".probe{i} {{ display: inline-block; width: {i + 1}px }}", "text/css")
        if kind == "img":
            svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="{i + 2}" height="2"></svg>'
            return _typed(svg, "image/svg+xml")
        # Each script appends its own line of text: the DOM shows which ones ran, in order.
        return _typed(
            "document.getElementById('out').appendChild("
            f"document.createTextNode('script-{i}-ran;'));",
            "text/javascript",
        )


def _typed(text: str, content_type: str) -> Response:
    return Response(200, text=text, headers={"content-type": content_type})


# -- counting the connections the server accepts ------------------------------------------


class _Counter:
    accepted = 0


class CountingAsyncNetwork(AsyncSocketNetwork):
    """The OS's sockets, counting the connections the server accepts."""

    def __init__(self) -> None:
        super().__init__()
        self.count = _Counter()

    async def listen_tcp(self, host: str, port: int, backlog: int = 1024) -> Any:
        return _AsyncCountingListener(await super().listen_tcp(host, port, backlog), self.count)


class _AsyncCountingListener:
    def __init__(self, inner: Any, count: _Counter) -> None:
        self._inner, self._count = inner, count

    @property
    def address(self) -> Any:
        return self._inner.address

    async def accept(self) -> AsyncSocketStream | None:
        stream = await self._inner.accept()
        if stream is not None:
            self._count.accepted += 1
        return stream  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self._inner.aclose()


class CountingSyncNetwork(SyncSocketNetwork):
    """The OS's sockets, counting the connections the server accepts."""

    def __init__(self) -> None:
        super().__init__()
        self.count = _Counter()

    def listen_tcp(self, host: str, port: int, backlog: int = 1024) -> Any:
        return _SyncCountingListener(super().listen_tcp(host, port, backlog), self.count)


class _SyncCountingListener:
    def __init__(self, inner: Any, count: _Counter) -> None:
        self._inner, self._count = inner, count

    @property
    def address(self) -> Any:
        return self._inner.address

    def accept(self) -> SyncSocketStream | None:
        stream = self._inner.accept()
        if stream is not None:
            self._count.accepted += 1
        return stream  # type: ignore[no-any-return]

    def close(self) -> None:
        self._inner.close()


# -- TLS material and the browser ---------------------------------------------------------


@dataclass
class Tls:
    server: ssl.SSLContext
    pin: str  # base64 SHA-256 of the leaf certificate's SubjectPublicKeyInfo


@pytest.fixture(scope="module")
def tls(ca: trustme.CA) -> Tls:
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(ctx)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return Tls(ctx, base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii"))


def _chromium_argv(chromium: str, url: str, profile: Path, pin: str) -> list[str]:
    return [
        chromium,
        "--headless",
        "--no-sandbox",  # as root (containers, CI): Chromium refuses to start otherwise
        "--disable-gpu",
        "--disable-dev-shm-usage",  # a container's small /dev/shm can crash the renderer
        "--disable-quic",
        "--no-proxy-server",  # a proxy in the environment must not stand in between
        "--no-first-run",
        # Without these, Chromium reaches out to Google's hosts.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--ignore-certificate-errors-spki-list={pin}",
        "--dump-dom",
        url,
    ]


def _run_browser(argv: list[str]) -> str:
    """Run Chromium to the end (at most TIMEOUT seconds); return the DOM it dumped.

    It runs in a session of its own, so that its helper processes (zygote, renderer,
    GPU) end with it, even when it has to be killed.
    """
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    ) as proc:
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=5)
            pytest.fail(f"Chromium did not finish in {TIMEOUT} s:\n{_tail(err)}")
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # a helper that outlived the browser
    assert proc.returncode == 0, f"Chromium exited with {proc.returncode}:\n{_tail(err)}"
    # A page that failed to load (a protocol error, say) still exits 0, with no DOM.
    assert out.strip(), f"Chromium dumped no DOM:\n{_tail(err)}"
    return out.decode("utf-8", errors="replace")


def _tail(stderr: bytes) -> str:
    return stderr.decode(errors="replace")[-3000:]


# -- what both worlds check ---------------------------------------------------------------


def _check_page(dom: str) -> None:
    """The browser's side: the page rendered, every subresource used, over h2."""
    ran = re.findall(r"script-(\d+)-ran;", dom)
    assert ran == [str(i) for i in range(SCRIPTS)], dom[-2000:]
    assert f"styles-applied:{STYLESHEETS}<" in dom, dom[-2000:]
    load = re.search(r"images-decoded:(\d+) protocols:([\w/.,-]*) entries:(\d+)", dom)
    assert load is not None, dom[-2000:]
    assert int(load.group(1)) == IMAGES
    assert load.group(2) == "h2"  # the page and every resource, as the browser saw it
    assert int(load.group(3)) == 1 + STYLESHEETS + IMAGES + SCRIPTS


def _check_requests(seen: Seen, accepted: int) -> None:
    """The server's side: each resource asked once, all over HTTP/2, on one connection."""
    paths = Counter(path for path, _, _ in seen.requests)
    assert paths == Counter(_expected_paths()), paths
    assert {version for _, version, _ in seen.requests} == {"2"}
    clients = {client for _, _, client in seen.requests}
    assert len(clients) == 1, clients  # one connection carried every request
    # The preconnect hints opened connections that carried nothing: the speculative
    # connections whose end must stay out of the error log.
    assert accepted > 1, f"Chromium opened {accepted} connection(s), no speculative one"


def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing at WARNING or above in any ``hyperpy`` logger."""
    loud = [
        f"{r.name} {r.levelname}: {r.getMessage()}\n{r.exc_text or ''}"
        for r in caplog.records
        if r.name.startswith("hyperpy") and r.levelno >= logging.WARNING
    ]
    assert loud == [], "\n".join(loud)


# -- the blocking Server ------------------------------------------------------------------


@interop("chromium", "HTTP/2 TLS", world="sync", role="server")
def test_sync_server_page(tls: Tls, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    chromium = require("chromium")
    caplog.set_level(logging.DEBUG, logger="hyperpy")
    seen = Seen()
    network = CountingSyncNetwork()
    port = 0

    def app(request: Request) -> Response:
        return seen.respond(request, port)

    with Server(app, port=0, ssl=tls.server, network=network) as server:
        assert server.address is not None
        port = server.address[1]
        dom = _run_browser(_chromium_argv(chromium, server.url + "/", tmp_path, tls.pin))
    _check_page(dom)
    _check_requests(seen, network.count.accepted)
    _quiet(caplog)


# -- the trio AsyncServer -----------------------------------------------------------------


@interop("chromium", "HTTP/2 TLS", world="async", role="server")
async def test_async_server_page(
    tls: Tls, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chromium = require("chromium")
    caplog.set_level(logging.DEBUG, logger="hyperpy")
    seen = Seen()
    network = CountingAsyncNetwork()
    port = 0

    async def app(request: Request) -> Response:
        return seen.respond(request, port)

    async with AsyncServer(app, port=0, ssl=tls.server, network=network) as server:
        assert server.address is not None
        port = server.address[1]
        argv = _chromium_argv(chromium, server.url + "/", tmp_path, tls.pin)
        with trio.fail_after(TIMEOUT + 5):  # _run_browser is bounded itself
            dom = await trio.to_thread.run_sync(_run_browser, argv)
    _check_page(dom)
    _check_requests(seen, network.count.accepted)
    _quiet(caplog)


# -- the ways a browser drops a connection, replayed with plain sockets --------------------

# The first bytes of a TLS ClientHello: a handshake cut short after the record header.
HELLO_START = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
# The HTTP/2 connection preface and an empty SETTINGS frame: a session opened, unused.
H2_START = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a browser aborting a socket does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _tls(address: tuple[str, int], ctx: ssl.SSLContext) -> ssl.SSLSocket:
    sock = socket.create_connection(address, timeout=5)
    try:
        return ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    except BaseException:
        sock.close()
        raise


def _drops(trusting: ssl.SSLContext) -> list[Callable[[tuple[str, int]], None]]:
    """One function per way of dropping a connection that never carries a request."""
    untrusting = ssl.create_default_context()  # trustme's CA is not among its roots
    untrusting.set_alpn_protocols(["h2"])

    def tcp_close(address: tuple[str, int]) -> None:
        socket.create_connection(address, timeout=5).close()

    def tcp_reset(address: tuple[str, int]) -> None:
        _reset(socket.create_connection(address, timeout=5))

    def hello_cut(address: tuple[str, int]) -> None:
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(HELLO_START)

    def hello_reset(address: tuple[str, int]) -> None:
        sock = socket.create_connection(address, timeout=5)
        sock.sendall(HELLO_START)
        _reset(sock)

    def tls_close(address: tuple[str, int]) -> None:
        with _tls(address, trusting) as sock:
            assert sock.selected_alpn_protocol() == "h2"

    def tls_reset(address: tuple[str, int]) -> None:
        _reset(_tls(address, trusting))

    def h2_session_close(address: tuple[str, int]) -> None:
        with _tls(address, trusting) as sock:
            sock.sendall(H2_START)

    def h2_session_reset(address: tuple[str, int]) -> None:
        sock = _tls(address, trusting)
        sock.sendall(H2_START)
        _reset(sock)

    def certificate_refused(address: tuple[str, int]) -> None:
        with pytest.raises(ssl.SSLCertVerificationError):
            _tls(address, untrusting)  # the client's alert ends the handshake

    return [
        tcp_close,
        tcp_reset,
        hello_cut,
        hello_reset,
        tls_close,
        tls_reset,
        h2_session_close,
        h2_session_reset,
        certificate_refused,
    ]


def _replay(address: tuple[str, int], trusting: ssl.SSLContext) -> None:
    for drop in _drops(trusting):
        for _ in range(3):
            drop(address)


# Not a cell of the matrix: no browser runs here, only its drop patterns.
def test_sync_dropped_connections_stay_out_of_the_log(
    tls: Tls, h2_client_ssl_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hyperpy")
    seen = Seen()

    def app(request: Request) -> Response:
        return seen.respond(request, 0)

    with Server(app, port=0, ssl=tls.server) as server:
        assert server.address is not None
        _replay(server.address, h2_client_ssl_context)
        with Client(verify=h2_client_ssl_context, http2=True) as client:
            response = client.get(server.url + "/js/0.js")
    assert response.status == 200 and b"script-0-ran" in response.content
    assert [version for _, version, _ in seen.requests] == ["2"]
    _quiet(caplog)


# Not a cell of the matrix: no browser runs here, only its drop patterns.
async def test_async_dropped_connections_stay_out_of_the_log(
    tls: Tls, h2_client_ssl_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hyperpy")
    seen = Seen()

    async def app(request: Request) -> Response:
        return seen.respond(request, 0)

    async with AsyncServer(app, port=0, ssl=tls.server) as server:
        assert server.address is not None
        with trio.fail_after(TIMEOUT):
            await trio.to_thread.run_sync(_replay, server.address, h2_client_ssl_context)
            async with AsyncClient(verify=h2_client_ssl_context, http2=True) as client:
                response = await client.get(server.url + "/js/0.js")
    assert response.status == 200 and b"script-0-ran" in response.content
    assert [version for _, version, _ in seen.requests] == ["2"]
    _quiet(caplog)
