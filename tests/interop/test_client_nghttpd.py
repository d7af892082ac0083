"""hyperpy's HTTP/2 clients against nghttpd, nghttp2's own server: the edge cases.

Over TLS (ALPN h2) and h2c with prior knowledge, through the blocking ``Client``
and the trio ``AsyncClient``:

- windows of 1 KiB: nghttpd advertises ``--window-bits 10`` (so a 2 MiB upload is
  sent a window at a time, echoed back by ``--echo-upload``), and the client
  advertises a 1 KiB stream window for a 2 MiB download;
- ``--max-concurrent-streams 8``: 100 requests at once share one connection; those
  sent before nghttpd's SETTINGS arrived and refused are sent once more, and every
  request past the eighth waits for a free stream;
- ``--no-content-length`` and ``--trailer``: a body that only END_STREAM ends,
  followed by trailer fields.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
import subprocess
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from peers import interop, require
from processes import free_port, started, stop

from hyperpy import AsyncClient, Client, H2Settings, Request, Response

BIG_SIZE = 2 * 1024 * 1024
STREAMS = 100
SERVER_STREAMS = 8
WINDOW_BITS = 10  # nghttpd's windows: 2**10 - 1 bytes
CLIENT_WINDOW = 1024
TRAILER = ("x-peer", "nghttpd")
TIMEOUT = 30.0
START_TIMEOUT = 10.0
START_ATTEMPTS = 3

PROTOCOLS = ["HTTP/2 TLS", "h2c prior knowledge"]


def cells(world: str) -> list[Any]:
    return [
        pytest.param(p, marks=interop("nghttpd", p, world=world, role="client"), id=p)
        for p in PROTOCOLS
    ]


def small_file(index: int) -> bytes:
    return f"file {index}\n".encode() * (1 + index)


# -- nghttpd ------------------------------------------------------------------------------


@dataclass
class Files:
    htdocs: Path
    key: Path
    cert: Path
    big: bytes
    big_digest: str


@contextlib.contextmanager
def nghttpd(files: Files, tls: bool, options: list[str], log: Path) -> Iterator[str]:
    """nghttpd serving ``files.htdocs`` with ``options``; yields its base URL."""
    binary = require("nghttpd")
    for _ in range(START_ATTEMPTS):
        port = free_port()
        command = [binary, "-a", "127.0.0.1", "-d", str(files.htdocs), *options, str(port)]
        command += [str(files.key), str(files.cert)] if tls else ["--no-tls"]
        with open(log, "ab") as output:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )
        if started(process, [port], START_TIMEOUT):
            break
        # Most likely the port was taken in between: try another.
    else:
        pytest.fail(f"nghttpd did not start\n{log.read_text(errors='replace')}", pytrace=False)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Files:
    directory = tmp_path_factory.mktemp("nghttpd")
    htdocs = directory / "htdocs"
    htdocs.mkdir()
    big = os.urandom(BIG_SIZE)
    (htdocs / "big.bin").write_bytes(big)
    for index in range(STREAMS):
        (htdocs / f"f{index:03}.txt").write_bytes(small_file(index))
    issued = ca.issue_cert("127.0.0.1", "localhost")
    key, cert = directory / "key.pem", directory / "cert.pem"
    issued.private_key_pem.write_to_path(key)
    for blob in issued.cert_chain_pems:
        blob.write_to_path(cert, append=True)
    return Files(htdocs, key, cert, big, hashlib.sha256(big).hexdigest())


@contextlib.contextmanager
def both(files: Files, options: list[str], log: Path) -> Iterator[dict[str, str]]:
    """nghttpd with ``options`` over TLS and h2c: the base URL of each, by protocol."""
    with (
        nghttpd(files, True, options, log) as tls,
        nghttpd(files, False, options, log) as h2c,
    ):
        yield {"HTTP/2 TLS": tls, "h2c prior knowledge": h2c}


@pytest.fixture(scope="module")
def tight(files: Files, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """nghttpd with 1 KiB windows and 8 streams at a time, echoing uploads."""
    options = [
        f"--window-bits={WINDOW_BITS}",
        f"--connection-window-bits={WINDOW_BITS}",
        f"--max-concurrent-streams={SERVER_STREAMS}",
        "--echo-upload",
    ]
    with both(files, options, tmp_path_factory.mktemp("nghttpd-log") / "tight.log") as urls:
        yield urls


@pytest.fixture(scope="module")
def unframed(files: Files, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """nghttpd sending no content-length, and a trailer after each body."""
    options = ["--no-content-length", f"--trailer={TRAILER[0]}: {TRAILER[1]}"]
    with both(files, options, tmp_path_factory.mktemp("nghttpd-log") / "unframed.log") as urls:
        yield urls


def client_options(url: str, h2_client_ssl_context: ssl.SSLContext, **more: Any) -> dict[str, Any]:
    if url.startswith("https:"):
        return {"verify": h2_client_ssl_context, "http2": True, "timeout": TIMEOUT, **more}
    return {"http2_prior_knowledge": True, "timeout": TIMEOUT, **more}


def check_sent(sent: list[str]) -> None:
    """Request hooks run once per attempt. Until nghttpd's SETTINGS arrive, the client
    knows no stream limit (RFC 9113 §6.5.2: none until then) and may open more than 8;
    nghttpd refuses the rest with REFUSED_STREAM, each is sent once more, and from then
    on waits for a free slot: never refused twice."""
    attempts = Counter(sent)
    assert len(attempts) == STREAMS
    assert max(attempts.values()) <= 2, attempts.most_common(3)


def check_file(response: Response, index: int) -> None:
    assert (response.status_code, response.http_version) == (200, "2")
    assert response.content == small_file(index)


# -- trio ---------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", cells("async"))
async def test_async_download_through_a_1_kib_window(
    tight: dict[str, str],
    files: Files,
    h2_client_ssl_context: ssl.SSLContext,
    protocol: str,
) -> None:
    url = tight[protocol]
    settings = H2Settings(initial_window_size=CLIENT_WINDOW, connection_window_size=CLIENT_WINDOW)
    options = client_options(url, h2_client_ssl_context, h2_settings=settings)
    async with AsyncClient(**options) as client:
        with trio.fail_after(TIMEOUT):
            digest, size, largest = hashlib.sha256(), 0, 0
            async with client.stream("GET", url + "/big.bin") as response:
                assert (response.status_code, response.http_version) == (200, "2")
                async for chunk in response.aiter_bytes():
                    digest.update(chunk)
                    size += len(chunk)
                    largest = max(largest, len(chunk))
        assert (size, digest.hexdigest()) == (BIG_SIZE, files.big_digest)
        # No piece of the body outgrows our window: what arrives is what it allowed.
        assert largest <= CLIENT_WINDOW


@pytest.mark.parametrize("protocol", cells("async"))
async def test_async_upload_into_a_1_kib_window(
    tight: dict[str, str],
    files: Files,
    h2_client_ssl_context: ssl.SSLContext,
    protocol: str,
) -> None:
    url = tight[protocol]
    async with AsyncClient(**client_options(url, h2_client_ssl_context)) as client:
        with trio.fail_after(TIMEOUT):
            response = await client.post(url + "/echo", content=files.big)
        assert (response.status_code, response.http_version) == (200, "2")
        assert hashlib.sha256(response.content).hexdigest() == files.big_digest


@pytest.mark.parametrize("protocol", cells("async"))
async def test_async_100_streams_through_8_slots(
    tight: dict[str, str],
    h2_client_ssl_context: ssl.SSLContext,
    protocol: str,
) -> None:
    url = tight[protocol]
    responses: dict[int, Response] = {}

    async def fetch(client: AsyncClient, index: int) -> None:
        responses[index] = await client.get(f"{url}/f{index:03}.txt")

    sent: list[str] = []

    async def count(request: Request) -> None:
        sent.append(str(request.url))

    options = client_options(url, h2_client_ssl_context, event_hooks={"request": [count]})
    async with AsyncClient(**options) as client:
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                for index in range(STREAMS):
                    nursery.start_soon(fetch, client, index)
        for index in range(STREAMS):
            check_file(responses[index], index)
        assert client.connections_opened == 1
    check_sent(sent)


@pytest.mark.parametrize("protocol", cells("async"))
async def test_async_body_without_length_then_trailers(
    unframed: dict[str, str],
    files: Files,
    h2_client_ssl_context: ssl.SSLContext,
    protocol: str,
) -> None:
    url = unframed[protocol]
    async with AsyncClient(**client_options(url, h2_client_ssl_context)) as client:
        with trio.fail_after(TIMEOUT):
            response = await client.get(url + "/big.bin")
            assert "content-length" not in response.headers
            assert hashlib.sha256(response.content).hexdigest() == files.big_digest
            assert response.trailers.get(TRAILER[0]) == TRAILER[1]
            # The next request shares the connection.
            check_file(await client.get(url + "/f007.txt"), 7)
        assert client.connections_opened == 1


# -- blocking -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", cells("sync"))
def test_sync_download_through_a_1_kib_window(
    tight: dict[str, str],
    files: Files,
    h2_client_ssl_context: ssl.SSLContext,
    protocol: str,
) -> None:
    url = tight[protocol]
    settings = H2Settings(initial_window_size=CLIENT_WINDOW, connection_window_size=CLIENT_WINDOW)
    with Client(**client_options(url, h2_client_ssl_context, h2_settings=settings)) as client:
        digest, size, largest = hashlib.sha256(), 0, 0
        with client.stream("GET", url + "/big.bin") as response:
            assert (response.status_code, response.http_version) == (200, "2")
            for chunk in response.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
                largest = max(largest, len(chunk))
        assert (size, digest.hexdigest()) == (BIG_SIZE, files.big_digest)
        assert largest <= CLIENT_WINDOW


@pytest.mark.parametrize("protocol", cells("sync"))
def test_sync_upload_into_a_1_kib_window(
    tight: dict[str, str],
    files: Files,
    h2_client_ssl_context: ssl.SSLContext,
    protocol: str,
) -> None:
    url = tight[protocol]
    with Client(**client_options(url, h2_client_ssl_context)) as client:
        response = client.post(url + "/echo", content=files.big)
        assert (response.status_code, response.http_version) == (200, "2")
        assert hashlib.sha256(response.content).hexdigest() == files.big_digest


@pytest.mark.parametrize("protocol", cells("sync"))
def test_sync_100_streams_through_8_slots(
    tight: dict[str, str],
    h2_client_ssl_context: ssl.SSLContext,
    protocol: str,
) -> None:
    url = tight[protocol]
    sent: list[str] = []
    hooks = {"request": [lambda request: sent.append(str(request.url))]}
    with (
        Client(**client_options(url, h2_client_ssl_context, event_hooks=hooks)) as client,
        ThreadPoolExecutor(STREAMS) as pool,
    ):
        urls = [f"{url}/f{index:03}.txt" for index in range(STREAMS)]
        responses = list(pool.map(client.get, urls, timeout=TIMEOUT))
        for index, response in enumerate(responses):
            check_file(response, index)
        assert client.connections_opened == 1
    check_sent(sent)


@pytest.mark.parametrize("protocol", cells("sync"))
def test_sync_body_without_length_then_trailers(
    unframed: dict[str, str],
    files: Files,
    h2_client_ssl_context: ssl.SSLContext,
    protocol: str,
) -> None:
    url = unframed[protocol]
    with Client(**client_options(url, h2_client_ssl_context)) as client:
        response = client.get(url + "/big.bin")
        assert "content-length" not in response.headers
        assert hashlib.sha256(response.content).hexdigest() == files.big_digest
        assert response.trailers.get(TRAILER[0]) == TRAILER[1]
        check_file(client.get(url + "/f007.txt"), 7)
        assert client.connections_opened == 1
