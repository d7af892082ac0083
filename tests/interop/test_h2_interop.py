"""nghttp and h2load against hyperpy's servers: HTTP/2 over TLS (ALPN), h2c with prior
knowledge and h2c by ``Upgrade``, in both worlds, with the native handlers and behind
the adapters (Flask through ``WSGIAdapter`` on ``Server``, Starlette through
``ASGIAdapter`` on ``AsyncServer``). The handlers are those of test_curl.py and
test_curl_apps.py.

nghttp runs many streams on one connection (``-m``, several URIs) and reports every
frame (``-v``): each stream's path, status, body bytes and reset are read from it.
h2load runs a short bounded load (2000 requests over 4 connections, 10 streams each;
and the same over HTTP/1.1 with ``--h1``), which must end with every request
answered 2xx.

nghttp and h2load do not verify certificates: fine for protocol tests.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from peers import interop, require
from test_curl import HELLO, UPLOAD_SIZE, async_app, digest_line, sync_app, upload_file
from test_curl_apps import flask_app, starlette_app

from hyperpy import AsyncServer, Server
from hyperpy.asgi import ASGIAdapter
from hyperpy.wsgi import WSGIAdapter

TIMEOUT = 60  # the bound on one tool run
LOAD = 2000  # h2load: requests, over 4 connections of 10 streams each
SIZE = 1_000_000  # the downloads nghttp fetches


@dataclass(frozen=True)
class Protocol:
    label: str  # the interop matrix's protocol label
    id: str
    tls: bool
    nghttp: tuple[str, ...] = ()  # nghttp's flags for it


PROTOCOLS = [
    Protocol("HTTP/2 TLS", "h2-tls", True),
    Protocol("h2c prior knowledge", "h2c-prior", False),  # nghttp's default for http://
    Protocol("h2c upgrade", "h2c-upgrade", False, ("-u",)),
]


# -- nghttp: what each stream did, read from -v -------------------------------------------


@dataclass
class Stream:
    path: str = ""
    status: int = 0
    size: int = 0  # DATA payload bytes received
    reset: str = ""  # the error code of the RST_STREAM received, if any


@dataclass
class Nghttp:
    returncode: int
    streams: dict[int, Stream]
    out: str

    def requests(self) -> list[Stream]:
        """The streams that carried a request of ours (not the h2c upgrade's
        ``OPTIONS *``, which nghttp sends when it has a body to upload)."""
        return [s for s in self.streams.values() if s.path != "*"]


_SEND_HEADERS = re.compile(r"\[[ \d.]+\] send HEADERS frame <.*stream_id=(\d+)>")
_PATH = re.compile(r"\s+:path: (\S+)")
_UPGRADE_REQUEST = re.compile(r"(?:GET|POST|OPTIONS|HEAD) (\S+) HTTP/1\.1")
_STATUS = re.compile(r"recv \(stream_id=(\d+)\) :status: (\d+)")
_DATA = re.compile(r"recv DATA frame <length=(\d+), flags=0x[0-9a-f]+, stream_id=(\d+)>")
_RST = re.compile(r"recv RST_STREAM frame <.*stream_id=(\d+)>")
_ERROR_CODE = re.compile(r"\s+\(error_code=(\w+)\(")


def parse_nghttp(done: subprocess.CompletedProcess[bytes]) -> Nghttp:
    out = done.stdout.decode(errors="replace")
    streams: dict[int, Stream] = {}
    sending = reset = None  # the stream whose HEADERS / RST_STREAM lines follow
    for line in out.splitlines():
        if line.startswith("["):  # a new event: the lines of the one before are over
            match = _SEND_HEADERS.match(line)
            sending = int(match[1]) if match else None
        if match := _UPGRADE_REQUEST.fullmatch(line):
            streams.setdefault(1, Stream()).path = match[1]  # the upgrade is stream 1
        elif sending is not None and (match := _PATH.match(line)):
            streams.setdefault(sending, Stream()).path = match[1]
        elif match := _STATUS.search(line):
            streams.setdefault(int(match[1]), Stream()).status = int(match[2])
        elif match := _DATA.search(line):
            streams.setdefault(int(match[2]), Stream()).size += int(match[1])
        elif match := _RST.search(line):
            reset = int(match[1])
        elif reset is not None and (match := _ERROR_CODE.match(line)):
            streams.setdefault(reset, Stream()).reset = match[1]
            reset = None
    return Nghttp(done.returncode, streams, out + done.stderr.decode(errors="replace"))


@dataclass(frozen=True)
class Case:
    """A tool run: ``args`` gives its arguments from the server's URL and the file to
    upload (the protocol's flags come first); ``check`` asserts on what it printed."""

    name: str
    tool: str  # "nghttp" or "h2load"
    args: Callable[[str, Path], list[str]]
    check: Callable[[subprocess.CompletedProcess[bytes], Protocol, Path], None]
    protocols: list[Protocol] = field(default_factory=lambda: PROTOCOLS)

    def command(self, url: str, protocol: Protocol, upload: Path) -> list[str]:
        flags = protocol.nghttp if self.tool == "nghttp" else ()
        return [require(self.tool), *flags, *self.args(url, upload)]


def _check_upgraded(result: Nghttp, protocol: Protocol) -> None:
    if protocol.nghttp == ("-u",):
        assert "HTTP/1.1 101 Switching Protocols" in result.out, result.out[-3000:]
        assert "HTTP Upgrade success" in result.out, result.out[-3000:]


def _check_streams(
    done: subprocess.CompletedProcess[bytes], protocol: Protocol, upload: Path
) -> None:
    result = parse_nghttp(done)
    assert result.returncode == 0, result.out[-3000:]
    _check_upgraded(result, protocol)
    requests = result.requests()
    assert len(requests) == 20, result.out[-3000:]  # -m 20: twenty streams, one connection
    assert all((s.path, s.status, s.size) == ("/", 200, len(HELLO)) for s in requests), requests


def _check_uris(done: subprocess.CompletedProcess[bytes], protocol: Protocol, upload: Path) -> None:
    result = parse_nghttp(done)
    assert result.returncode == 0, result.out[-3000:]
    _check_upgraded(result, protocol)
    expected = {"/": len(HELLO), f"/download/{SIZE}": SIZE, f"/stream/{SIZE}": SIZE}
    requests = result.requests()
    assert len(requests) == 3 * len(expected), result.out[-3000:]  # -m 3, each URI
    assert sorted(s.path for s in requests) == sorted(list(expected) * 3)
    for stream in requests:
        assert (stream.status, stream.size) == (200, expected[stream.path]), stream


def _check_upload(
    done: subprocess.CompletedProcess[bytes], protocol: Protocol, upload: Path
) -> None:
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    data = upload.read_bytes()
    assert len(data) == UPLOAD_SIZE
    # nghttp prints the bodies: with -u, the answer to its upgrade (OPTIONS *, which
    # the apps do not route) comes too.
    assert digest_line(len(data), hashlib.sha256(data).hexdigest()) in done.stdout.decode()


def _check_early(
    done: subprocess.CompletedProcess[bytes], protocol: Protocol, upload: Path
) -> None:
    result = parse_nghttp(done)
    assert result.returncode == 0, result.out[-3000:]  # nghttp takes the answer as final
    (stream,) = result.requests()
    assert (stream.path, stream.status) == ("/refuse", 413)
    assert stream.size == len(b"refused unread\n")
    # Answered before the 4 MiB upload was read: the server stops it with
    # RST_STREAM(NO_ERROR) after the response (RFC 9113 §8.1).
    assert stream.reset == "NO_ERROR", result.out[-3000:]


def _check_load(protocol: str) -> Callable[[subprocess.CompletedProcess[bytes], Any, Any], None]:
    def check(done: subprocess.CompletedProcess[bytes], *_: Any) -> None:
        out = done.stdout.decode(errors="replace")
        assert done.returncode == 0, out
        requests = (
            f"requests: {LOAD} total, {LOAD} started, {LOAD} done, {LOAD} succeeded, "
            "0 failed, 0 errored, 0 timeout"
        )
        assert requests in out, out
        assert f"status codes: {LOAD} 2xx, 0 3xx, 0 4xx, 0 5xx" in out, out
        assert f"({LOAD * len(HELLO)}) data" in out, out  # every body, whole
        assert f"Application protocol: {protocol}\n" in out, out

    return check


# Each request of nghttp's ends within this (the tool run has TIMEOUT).
NGHTTP = ["-t", str(TIMEOUT - 10)]
# nghttp asks for gzip by default, and Starlette's GZipMiddleware compresses whatever
# a client accepts: ask for the bodies as they are, to count their bytes.
IDENTITY = ["-H", "accept-encoding: identity"]


def _uris(url: str, upload: Path) -> list[str]:
    uris = [url + "/", f"{url}/download/{SIZE}", f"{url}/stream/{SIZE}"]
    return [*NGHTTP, "-nv", *IDENTITY, "-m", "3", *uris]


def _load(*args: str) -> Callable[[str, Path], list[str]]:
    return lambda url, upload: ["-n", str(LOAD), "-c", "4", *args, url + "/"]


H2_TLS, H2C, _ = PROTOCOLS  # h2load has no h2c upgrade
HTTP11 = Protocol("HTTP/1.1", "h1", False)
CASES = [
    Case("streams", "nghttp", lambda u, f: [*NGHTTP, "-nv", "-m", "20", u + "/"], _check_streams),
    Case("uris", "nghttp", _uris, _check_uris),
    Case(
        "upload",
        "nghttp",
        lambda u, f: [*NGHTTP, "-d", str(f), u + "/sha256"],
        _check_upload,
    ),
    Case(
        "early-answer",
        "nghttp",
        lambda u, f: [*NGHTTP, "-nv", "-d", str(f), u + "/refuse"],
        _check_early,
    ),
    Case("load", "h2load", _load("-m", "10"), _check_load("h2"), [H2_TLS]),
    Case("load", "h2load", _load("-m", "10"), _check_load("h2c"), [H2C]),
    # The same load over HTTP/1.1: keep-alive, one request at a time per connection.
    Case("load", "h2load", _load("--h1"), _check_load("http/1.1"), [HTTP11]),
]


def params(world: str, kinds: list[str]) -> list[Any]:
    """(kind, protocol, case) triples, each marked with the matrix cell it proves."""
    return [
        pytest.param(
            kind,
            protocol,
            case,
            marks=interop(case.tool, protocol.label, world=world),
            id=f"{kind}-{protocol.id}-{case.name}",
        )
        for kind in kinds
        for case in CASES
        for protocol in case.protocols
    ]


@pytest.fixture
def upload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return upload_file(tmp_path_factory)


# -- the blocking Server ------------------------------------------------------------------

SYNC_HANDLERS: dict[str, Callable[[], Any]] = {
    "native": lambda: sync_app,
    "wsgi": lambda: WSGIAdapter(flask_app),
}


@pytest.mark.parametrize(("kind", "protocol", "case"), params("sync", list(SYNC_HANDLERS)))
def test_sync_server(
    kind: str, protocol: Protocol, case: Case, upload: Path, server_ssl_context: ssl.SSLContext
) -> None:
    context = server_ssl_context if protocol.tls else None
    with Server(SYNC_HANDLERS[kind](), port=0, ssl=context) as server:
        done = subprocess.run(
            case.command(server.url, protocol, upload), capture_output=True, timeout=TIMEOUT
        )
    case.check(done, protocol, upload)


# -- the trio AsyncServer -----------------------------------------------------------------

ASYNC_HANDLERS: dict[str, Callable[[], Any]] = {
    "native": lambda: async_app,
    "asgi": lambda: ASGIAdapter(starlette_app),
}


@pytest.mark.parametrize(("kind", "protocol", "case"), params("async", list(ASYNC_HANDLERS)))
async def test_async_server(
    kind: str, protocol: Protocol, case: Case, upload: Path, server_ssl_context: ssl.SSLContext
) -> None:
    context = server_ssl_context if protocol.tls else None
    async with AsyncServer(ASYNC_HANDLERS[kind](), port=0, ssl=context) as server:
        with trio.fail_after(TIMEOUT):
            done = await trio.run_process(
                case.command(server.url, protocol, upload),
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    case.check(done, protocol, upload)
