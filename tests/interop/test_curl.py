"""curl as an independent HTTP/1.1 client against both the sync and the trio server.

Skipped only when curl is missing outside CI; in CI (env ``CI`` set) a missing
curl fails the tests instead of silently skipping them.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio
import trustme

from hyperpy import AsyncServer, Server
from hyperpy._async import demo as async_demo
from hyperpy._sync import demo as sync_demo

CURL = shutil.which("curl") or "curl"
pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None and not os.environ.get("CI"), reason="curl is not installed"
)

# Appended to curl's output: status and protocol version, after a marker line.
WRITE_OUT = ["-w", "\n--curl--\n%{http_code} %{http_version}"]
BIG = bytes(range(256)) * 4096  # 1 MiB


def _curl(url: str, *args: str) -> list[str]:
    return [CURL, "--http1.1", "-s", "-S", "--max-time", "20", *WRITE_OUT, *args, url]


def _parse(stdout: bytes) -> tuple[bytes, str, str]:
    body, _, meta = stdout.rpartition(b"\n--curl--\n")
    status, version = meta.decode().split()
    return body, status, version


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    big = tmp_path / "big.bin"
    big.write_bytes(BIG)
    return {"big": big}


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def _cases(base: str, files: dict[str, Path]) -> list[tuple[list[str], bytes]]:
    """(curl command, expected body) pairs run against each server."""
    big = str(files["big"])
    return [
        (_curl(base + "/"), b"Hello, world!"),
        (_curl(base + "/echo", "--data-binary", "posted by curl"), b"posted by curl"),
        (_curl(base + "/echo", "--data-binary", f"@{big}"), BIG),
        (
            _curl(base + "/echo", "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{big}"),
            BIG,
        ),
        (_curl(base + "/bytes/300000"), b"x" * 300000),
    ]


# -- the blocking Server --------------------------------------------------------------


@pytest.fixture
def sync_server() -> Iterator[Server]:
    with Server(sync_demo.app, port=0) as server:
        yield server


def test_sync_server(sync_server: Server, files: dict[str, Path]) -> None:
    for command, expected in _cases(sync_server.url, files):
        done = subprocess.run(command, capture_output=True, timeout=30, check=True)
        body, status, version = _parse(done.stdout)
        assert (status, version) == ("200", "1.1"), command
        assert body == expected, command


def test_sync_server_tls(server_ssl_context: ssl.SSLContext, ca_file: Path) -> None:
    with Server(sync_demo.app, port=0, ssl=server_ssl_context) as server:
        done = subprocess.run(
            _curl(server.url + "/echo", "--cacert", str(ca_file), "--data-binary", "tls"),
            capture_output=True,
            timeout=30,
            check=True,
        )
        body, status, version = _parse(done.stdout)
        assert (body, status, version) == (b"tls", "200", "1.1")
        refused = subprocess.run(_curl(server.url + "/"), capture_output=True, timeout=30)
        assert refused.returncode == 60  # peer certificate cannot be authenticated


def test_sync_server_headers(sync_server: Server) -> None:
    done = subprocess.run(
        [CURL, "--http1.1", "-s", "-S", "-D", "-", "-o", os.devnull, sync_server.url + "/"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    head = done.stdout.decode().lower()
    assert head.startswith("http/1.1 200 ok\r\n")
    assert "\r\nserver: hyperpy\r\n" in head
    assert "\r\ndate: " in head
    assert "\r\ncontent-length: 13\r\n" in head


# -- the trio AsyncServer -------------------------------------------------------------


@pytest.fixture
async def async_server() -> AsyncIterator[AsyncServer]:
    async with AsyncServer(async_demo.app, port=0) as server:
        yield server


async def test_async_server(async_server: AsyncServer, files: dict[str, Path]) -> None:
    for command, expected in _cases(async_server.url, files):
        with trio.fail_after(30):
            done = await trio.run_process(command, capture_stdout=True, capture_stderr=True)
        body, status, version = _parse(done.stdout)
        assert (status, version) == ("200", "1.1"), command
        assert body == expected, command


async def test_async_server_tls(server_ssl_context: ssl.SSLContext, ca_file: Path) -> None:
    async with AsyncServer(async_demo.app, port=0, ssl=server_ssl_context) as server:
        command = _curl(server.url + "/echo", "--cacert", str(ca_file), "--data-binary", "tls")
        with trio.fail_after(30):
            done = await trio.run_process(command, capture_stdout=True, capture_stderr=True)
            refused = await trio.run_process(
                _curl(server.url + "/"), capture_stdout=True, capture_stderr=True, check=False
            )
        assert _parse(done.stdout) == (b"tls", "200", "1.1")
        assert refused.returncode == 60


async def test_async_server_keepalive(async_server: AsyncServer) -> None:
    # Several URLs in one curl run reuse one connection ("Re-using existing connection").
    url = async_server.url + "/"
    command = [CURL, "--http1.1", "-s", "-S", "-v", url, url, url]
    with trio.fail_after(30):
        done = await trio.run_process(command, capture_stdout=True, capture_stderr=True)
    assert done.stdout == b"Hello, world!" * 3
    log = done.stderr.decode(errors="replace").lower()
    assert log.count("re-using existing connection") + log.count("reusing existing") >= 2
