"""HTTP/2 interop: curl, nghttp and h2load against the sync Server and the trio AsyncServer.

Over TLS (ALPN h2), h2c with prior knowledge, and h2c by ``Upgrade``. A tool that is
missing skips its tests outside CI; in CI (env ``CI`` set) it fails them instead.
"""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trustme

from hyperpy import AsyncServer, Server
from hyperpy._async import demo as async_demo
from hyperpy._sync import demo as sync_demo

BIG = bytes((i * 7 + i // 256) % 256 for i in range(1024 * 1024))  # 1 MiB, not periodic
MARK = b"\n--curl--\n"
WRITE_OUT = ["-w", "\n--curl--\n%{http_code} %{http_version}"]
TIMEOUT = 30


@dataclass
class Urls:
    http: str  # h2c (prior knowledge or Upgrade) and HTTP/1.1
    https: str  # TLS, ALPN h2


@dataclass
class Files:
    ca: Path
    big: Path


@dataclass
class Case:
    """One tool run: ``command`` builds its argv, ``check`` asserts on the result."""

    name: str
    tool: str
    command: Callable[[Urls, Files], list[str]]
    check: Callable[[subprocess.CompletedProcess[bytes]], None]


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is required in CI but is not installed")
        pytest.skip(f"{tool} is not installed")
    return path


def _curl(*args: str) -> list[str]:
    return ["curl", "-s", "-S", "--max-time", "20", *WRITE_OUT, *args]


def _curl_result(done: subprocess.CompletedProcess[bytes]) -> tuple[bytes, str, str]:
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    body, _, meta = done.stdout.rpartition(MARK)
    status, version = meta.decode().split()
    return body, status, version


def _expect_curl(body: bytes) -> Callable[[subprocess.CompletedProcess[bytes]], None]:
    def check(done: subprocess.CompletedProcess[bytes]) -> None:
        got, status, version = _curl_result(done)
        assert (status, version) == ("200", "2")
        assert got == body

    return check


def _check_upgrade(done: subprocess.CompletedProcess[bytes]) -> None:
    _expect_curl(b"Hello, world!")(done)
    log = done.stderr.decode(errors="replace")
    assert "101" in log, log  # the server switched protocols: h2c by Upgrade


def _check_nghttp(done: subprocess.CompletedProcess[bytes]) -> None:
    out = done.stdout.decode(errors="replace")
    assert done.returncode == 0, out + done.stderr.decode(errors="replace")
    assert "recv SETTINGS frame" in out
    assert re.search(r"recv \(stream_id=\d+\) :status: 200", out), out
    assert re.search(r"recv DATA frame <length=13, flags=0x01, stream_id=\d+>", out), out
    assert "send GOAWAY frame" in out  # nghttp closes cleanly: nothing was left hanging


def _check_nghttp_upgrade(done: subprocess.CompletedProcess[bytes]) -> None:
    _check_nghttp(done)
    out = done.stdout.decode(errors="replace")
    assert "HTTP/1.1 101 Switching Protocols" in out and "HTTP Upgrade success" in out, out


def _check_nghttp_upload(done: subprocess.CompletedProcess[bytes]) -> None:
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout == BIG


def _check_h2load(protocol: str) -> Callable[[subprocess.CompletedProcess[bytes]], None]:
    def check(done: subprocess.CompletedProcess[bytes]) -> None:
        out = done.stdout.decode(errors="replace")
        assert done.returncode == 0, out
        assert "requests: 200 total, 200 started, 200 done, 200 succeeded, 0 failed" in out, out
        assert "status codes: 200 2xx" in out, out
        assert f"Application protocol: {protocol}\n" in out, out

    return check


CASES = [
    Case(
        "curl-tls-alpn",
        "curl",
        lambda u, f: _curl("--http2", "--cacert", str(f.ca), u.https + "/"),
        _expect_curl(b"Hello, world!"),
    ),
    Case(
        "curl-prior-knowledge",
        "curl",
        lambda u, f: _curl("--http2-prior-knowledge", u.http + "/"),
        _expect_curl(b"Hello, world!"),
    ),
    Case(
        "curl-h2c-upgrade",
        "curl",
        lambda u, f: _curl("--http2", "-v", u.http + "/"),
        _check_upgrade,
    ),
    Case(
        "curl-post-1mb-tls",
        "curl",
        lambda u, f: _curl(
            "--http2", "--cacert", str(f.ca), "--data-binary", f"@{f.big}", u.https + "/echo"
        ),
        _expect_curl(BIG),
    ),
    Case(
        "curl-post-1mb-h2c",
        "curl",
        lambda u, f: _curl(
            "--http2-prior-knowledge", "--data-binary", f"@{f.big}", u.http + "/echo"
        ),
        _expect_curl(BIG),
    ),
    Case(
        "curl-download-3mb-tls",
        "curl",
        lambda u, f: _curl("--http2", "--cacert", str(f.ca), u.https + "/bytes/3000000"),
        _expect_curl(b"x" * 3000000),
    ),
    Case("nghttp-h2c", "nghttp", lambda u, f: ["nghttp", "-nv", u.http + "/"], _check_nghttp),
    Case(
        "nghttp-h2c-upgrade",
        "nghttp",
        lambda u, f: ["nghttp", "-nvu", u.http + "/"],
        _check_nghttp_upgrade,
    ),
    # nghttp has no --cacert and does not verify certificates: fine for a protocol test.
    Case("nghttp-tls", "nghttp", lambda u, f: ["nghttp", "-nv", u.https + "/"], _check_nghttp),
    Case(
        "nghttp-post-1mb-tls",
        "nghttp",
        lambda u, f: ["nghttp", "-d", str(f.big), u.https + "/echo"],
        _check_nghttp_upload,
    ),
    Case(
        "h2load-h2c",
        "h2load",
        lambda u, f: ["h2load", "-n", "200", "-c", "2", "-m", "20", u.http + "/"],
        _check_h2load("h2c"),
    ),
    Case(
        "h2load-tls",
        "h2load",
        lambda u, f: ["h2load", "-n", "200", "-c", "2", "-m", "20", u.https + "/"],
        _check_h2load("h2"),
    ),
]


@pytest.fixture
def files(ca: trustme.CA, tmp_path: Path) -> Files:
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    big = tmp_path / "big.bin"
    big.write_bytes(BIG)
    return Files(ca_path, big)


# -- the blocking Server (in its own threads) ---------------------------------------------


@pytest.fixture
def sync_urls(server_ssl_context: ssl.SSLContext) -> Iterator[Urls]:
    with Server(sync_demo.app, port=0) as plain:
        with Server(sync_demo.app, port=0, ssl=server_ssl_context) as tls:
            yield Urls(plain.url, tls.url)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sync_server(case: Case, sync_urls: Urls, files: Files) -> None:
    _require(case.tool)
    done = subprocess.run(case.command(sync_urls, files), capture_output=True, timeout=TIMEOUT)
    case.check(done)


# -- the trio AsyncServer ----------------------------------------------------------------


@pytest.fixture
async def async_urls(server_ssl_context: ssl.SSLContext) -> AsyncIterator[Urls]:
    async with AsyncServer(async_demo.app, port=0) as plain:
        async with AsyncServer(async_demo.app, port=0, ssl=server_ssl_context) as tls:
            yield Urls(plain.url, tls.url)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_async_server(case: Case, async_urls: Urls, files: Files) -> None:
    _require(case.tool)
    with trio.fail_after(TIMEOUT):
        done = await trio.run_process(
            case.command(async_urls, files),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    case.check(done)
