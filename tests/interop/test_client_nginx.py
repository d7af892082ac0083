"""hyperpy's clients against nginx, a real server nobody here wrote.

nginx serves static files from a temporary directory on loopback ports, over
HTTP/1.1, HTTP/1.1 over TLS and HTTP/2 over TLS (ALPN), each through the blocking
``Client`` and the trio ``AsyncClient``: a 32 MiB file streamed and checked by
digest, ``If-None-Match`` and ``Range`` requests, gzip bodies that nginx compresses
on the fly, and a server whose ``keepalive_requests 3`` makes nginx close every
connection after three requests (``Connection: close`` on HTTP/1.1, GOAWAY on
HTTP/2) and closes idle ones after a second, which the pool must absorb without
failing a request.
"""

from __future__ import annotations

import hashlib
import os
import signal
import ssl
import subprocess
import time
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

from hyperpy import AsyncClient, Client, Request, Response

BIG_SIZE = 32 * 1024 * 1024
# Text that compresses well, and is large enough for nginx to gzip in several pieces.
TEXT = b"".join(
    b"line %06d: the quick brown fox jumps over the lazy dog\n" % i for i in range(8000)
)
SMALL = bytes(range(256)) * 16  # 4 KiB, served as binary: never gzipped
KEEPALIVE_REQUESTS = 3
IDLE_TIMEOUT = 1  # seconds nginx keeps an idle connection on the closing server
SEQUENTIAL = 60
CONCURRENT = 20
TIMEOUT = 30.0
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
START_ATTEMPTS = 3

PROTOCOLS = ["HTTP/1.1", "HTTP/1.1 TLS", "HTTP/2 TLS"]
# The protocols in which nginx ends a connection after keepalive_requests.
CLOSING = ["HTTP/1.1", "HTTP/2 TLS"]


def cells(world: str, protocols: list[str]) -> list[Any]:
    return [
        pytest.param(p, marks=interop("nginx", p, world=world, role="client"), id=p)
        for p in protocols
    ]


# -- nginx ------------------------------------------------------------------------------


def _server_block(plain: int, tls: int, root: Path, cert: Path, key: Path, extra: str) -> str:
    return (
        "    server {\n"
        f"        listen 127.0.0.1:{plain};\n"
        f"        listen 127.0.0.1:{tls} ssl http2;\n"
        f"        ssl_certificate {cert};\n"
        f"        ssl_certificate_key {key};\n"
        f"        root {root};\n"
        f"{extra}"
        "    }\n"
    )


def _config(directory: Path, binary: str, ports: list[int], cert: Path, key: Path) -> str:
    # As root, the workers would switch to "nobody", which cannot enter the test's
    # private temporary directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    built = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10).stderr
    temp_paths = "".join(
        f"    {name}_temp_path {directory / name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        if f"--without-http_{name}_module" not in built
    )
    root = directory / "htdocs"
    short = (
        f"        keepalive_requests {KEEPALIVE_REQUESTS};\n"
        f"        keepalive_timeout {IDLE_TIMEOUT}s;\n"
    )
    return (
        f"{user}"
        "daemon off;\n"
        "master_process on;\n"
        "worker_processes 1;\n"
        f"pid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} notice;\n"
        "events {\n    worker_connections 512;\n}\n"
        "http {\n"
        f"    access_log {directory / 'access.log'};\n"
        f"{temp_paths}"
        "    types {\n        text/plain txt;\n        application/octet-stream bin;\n    }\n"
        "    default_type application/octet-stream;\n"
        "    sendfile on;\n"
        "    gzip on;\n"
        "    gzip_types text/plain;\n"
        "    gzip_min_length 1000;\n"
        + _server_block(ports[0], ports[1], root, cert, key, "")
        + _server_block(ports[2], ports[3], root, cert, key, short)
        + "}\n"
    )


@dataclass
class Nginx:
    """A running nginx: ``plain``/``tls`` ports of the ordinary server, and of the one
    that closes connections after ``KEEPALIVE_REQUESTS``."""

    ports: list[int]
    directory: Path
    big_digest: str

    def base(self, protocol: str, *, short: bool = False) -> str:
        offset = 2 if short else 0
        if protocol == "HTTP/1.1":
            return f"http://127.0.0.1:{self.ports[offset]}"
        return f"https://127.0.0.1:{self.ports[offset + 1]}"

    def logs(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _start(
    binary: str, directory: Path, cert: Path, key: Path, digest: str
) -> tuple[subprocess.Popen[bytes] | None, Nginx]:
    nginx = Nginx([free_port() for _ in range(4)], directory, digest)
    conf = directory / "nginx.conf"
    conf.write_text(_config(directory, binary, nginx.ports, cert, key))
    command = [binary, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")]
    with open(directory / "output.txt", "ab") as output:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )
    if started(process, nginx.ports, START_TIMEOUT, signal.SIGQUIT):
        return process, nginx
    return None, nginx


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Iterator[Nginx]:
    binary = require("nginx")
    directory = tmp_path_factory.mktemp("nginx-client")
    htdocs = directory / "htdocs"
    htdocs.mkdir()
    big = os.urandom(BIG_SIZE)  # incompressible, not periodic
    (htdocs / "big.bin").write_bytes(big)
    (htdocs / "text.txt").write_bytes(TEXT)
    (htdocs / "small.bin").write_bytes(SMALL)
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = directory / "cert.pem", directory / "key.pem"
    for blob in issued.cert_chain_pems:
        blob.write_to_path(cert, append=True)
    issued.private_key_pem.write_to_path(key)
    digest = hashlib.sha256(big).hexdigest()
    for _ in range(START_ATTEMPTS):
        process, running = _start(binary, directory, cert, key, digest)
        if process is not None:
            break
        if "Address already in use" not in running.logs():
            pytest.fail(f"nginx did not start\n{running.logs()}", pytrace=False)
    else:
        pytest.fail(f"nginx found no free ports\n{running.logs()}", pytrace=False)
    try:
        yield running
    finally:
        stop(process, signal.SIGQUIT, STOP_TIMEOUT)


def client_options(
    protocol: str, client_ssl_context: ssl.SSLContext, h2_client_ssl_context: ssl.SSLContext
) -> dict[str, Any]:
    if protocol == "HTTP/2 TLS":
        return {"verify": h2_client_ssl_context, "http2": True, "timeout": TIMEOUT}
    return {"verify": client_ssl_context, "timeout": TIMEOUT}


@pytest.fixture
def tls(
    client_ssl_context: ssl.SSLContext, h2_client_ssl_context: ssl.SSLContext
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return client_ssl_context, h2_client_ssl_context


def version(protocol: str) -> str:
    return "2" if protocol == "HTTP/2 TLS" else "1.1"


# -- the checks both worlds share --------------------------------------------------------


def check_not_modified(response: Response, protocol: str) -> None:
    assert (response.status_code, response.http_version) == (304, version(protocol))
    assert response.content == b""


def check_range(response: Response, protocol: str, first: int, last: int) -> None:
    assert response.status_code == 206, response.headers
    assert response.http_version == version(protocol)
    assert response.headers["content-range"] == f"bytes {first}-{last}/{BIG_SIZE}"
    assert len(response.content) == last - first + 1


def check_gzip(response: Response, protocol: str) -> None:
    assert (response.status_code, response.http_version) == (200, version(protocol))
    # nginx compressed it (the header stays), the client decoded it.
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == TEXT


def check_small(response: Response) -> None:
    assert response.status_code == 200
    assert response.content == SMALL


def check_attempts(protocol: str, sent: list[str]) -> None:
    """Request hooks run once per attempt: over HTTP/1.1 nginx says ``Connection: close``
    in the head of the last response, so no request is ever sent twice. (Over HTTP/2
    its GOAWAY may trail that response, and a request sent in between is refused and
    sent again, which is the protocol working.)"""
    if protocol == "HTTP/1.1":
        assert len(sent) == SEQUENTIAL, sent
    else:  # at most the one request that met each retired connection's GOAWAY
        assert SEQUENTIAL <= len(sent) <= SEQUENTIAL + SEQUENTIAL // KEEPALIVE_REQUESTS, sent


def check_connections(opened: int, requests: int) -> None:
    # nginx serves at most KEEPALIVE_REQUESTS on each connection: the client must open
    # new ones, and never more than one per request (each serves at least one).
    assert requests // KEEPALIVE_REQUESTS <= opened <= requests, opened


# -- trio ---------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", cells("async", PROTOCOLS))
async def test_async_large_file(nginx: Nginx, tls: Any, protocol: str) -> None:
    url = nginx.base(protocol) + "/big.bin"
    async with AsyncClient(**client_options(protocol, *tls)) as client:
        with trio.fail_after(TIMEOUT):
            digest, size = hashlib.sha256(), 0
            async with client.stream("GET", url) as response:
                assert response.status_code == 200
                assert response.http_version == version(protocol)
                assert response.headers["content-length"] == str(BIG_SIZE)
                async for chunk in response.aiter_bytes():
                    digest.update(chunk)
                    size += len(chunk)
            assert (size, digest.hexdigest()) == (BIG_SIZE, nginx.big_digest)
            # The connection was kept: the next request reuses it.
            response = await client.get(nginx.base(protocol) + "/small.bin")
            check_small(response)
        assert client.connections_opened == 1


@pytest.mark.parametrize("protocol", cells("async", PROTOCOLS))
async def test_async_conditional_and_range(nginx: Nginx, tls: Any, protocol: str) -> None:
    url = nginx.base(protocol) + "/big.bin"
    async with AsyncClient(**client_options(protocol, *tls)) as client:
        with trio.fail_after(TIMEOUT):
            head = await client.head(url)
            assert head.status_code == 200 and head.content == b""
            etag = head.headers["etag"]
            check_not_modified(await client.get(url, headers={"if-none-match": etag}), protocol)
            last = BIG_SIZE - 1
            first = last - 1024 * 1024 + 1
            response = await client.get(url, headers={"range": f"bytes={first}-{last}"})
            check_range(response, protocol, first, last)
            response = await client.get(url, headers={"range": "bytes=0-99"})
            check_range(response, protocol, 0, 99)
        assert client.connections_opened == 1


@pytest.mark.parametrize("protocol", cells("async", PROTOCOLS))
async def test_async_gzip_from_nginx(nginx: Nginx, tls: Any, protocol: str) -> None:
    url = nginx.base(protocol) + "/text.txt"
    async with AsyncClient(**client_options(protocol, *tls)) as client:
        with trio.fail_after(TIMEOUT):
            check_gzip(await client.get(url), protocol)
            async with client.stream("GET", url) as response:
                pieces = [chunk async for chunk in response.aiter_bytes()]
            assert b"".join(pieces) == TEXT
    # Asked for identity, nginx sends the text as it is.
    async with AsyncClient(**client_options(protocol, *tls), decompress=False) as raw:
        response = await raw.get(url)
        assert "content-encoding" not in response.headers
        assert response.content == TEXT


@pytest.mark.parametrize("protocol", cells("async", CLOSING))
async def test_async_nginx_closes_kept_alive_connections(
    nginx: Nginx, tls: Any, protocol: str
) -> None:
    url = nginx.base(protocol, short=True) + "/small.bin"
    sent: list[str] = []

    async def count(request: Request) -> None:
        sent.append(str(request.url))

    hooks = {"request": [count]}
    async with AsyncClient(**client_options(protocol, *tls), event_hooks=hooks) as client:
        with trio.fail_after(TIMEOUT):
            for i in range(SEQUENTIAL):
                check_small(await client.get(f"{url}?i={i}"))
        # Each connection carried exactly KEEPALIVE_REQUESTS requests.
        assert client.connections_opened == SEQUENTIAL // KEEPALIVE_REQUESTS, nginx.logs()
    check_attempts(protocol, sent)

    failures: list[str] = []

    async def one(client: AsyncClient, i: int) -> None:
        try:
            check_small(await client.get(f"{url}?c={i}"))
        except Exception as exc:  # collected: none is expected
            failures.append(f"{i}: {exc!r}")

    async with AsyncClient(**client_options(protocol, *tls)) as client:
        with trio.fail_after(TIMEOUT):
            for batch in range(3):
                async with trio.open_nursery() as nursery:
                    for i in range(CONCURRENT):
                        nursery.start_soon(one, client, batch * CONCURRENT + i)
        assert failures == []
        check_connections(client.connections_opened, 3 * CONCURRENT)


@pytest.mark.parametrize("protocol", cells("async", CLOSING))
async def test_async_nginx_closes_idle_connections(nginx: Nginx, tls: Any, protocol: str) -> None:
    url = nginx.base(protocol, short=True) + "/small.bin"
    sent: list[str] = []

    async def count(request: Request) -> None:
        sent.append(str(request.url))

    hooks = {"request": [count]}
    async with AsyncClient(**client_options(protocol, *tls), event_hooks=hooks) as client:
        with trio.fail_after(TIMEOUT):
            check_small(await client.get(url))
            # nginx closes the idle connection (HTTP/2: GOAWAY first); the next request
            # must go out on a new one, not fail on the dead one (nor be sent twice).
            await trio.sleep(IDLE_TIMEOUT + 0.5)
            check_small(await client.get(url))
        assert client.connections_opened == 2
    assert len(sent) == 2, sent


# -- blocking -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", cells("sync", PROTOCOLS))
def test_sync_large_file(nginx: Nginx, tls: Any, protocol: str) -> None:
    url = nginx.base(protocol) + "/big.bin"
    with Client(**client_options(protocol, *tls)) as client:
        digest, size = hashlib.sha256(), 0
        with client.stream("GET", url) as response:
            assert response.status_code == 200
            assert response.http_version == version(protocol)
            assert response.headers["content-length"] == str(BIG_SIZE)
            for chunk in response.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
        assert (size, digest.hexdigest()) == (BIG_SIZE, nginx.big_digest)
        check_small(client.get(nginx.base(protocol) + "/small.bin"))
        assert client.connections_opened == 1


@pytest.mark.parametrize("protocol", cells("sync", PROTOCOLS))
def test_sync_conditional_and_range(nginx: Nginx, tls: Any, protocol: str) -> None:
    url = nginx.base(protocol) + "/big.bin"
    with Client(**client_options(protocol, *tls)) as client:
        head = client.head(url)
        assert head.status_code == 200 and head.content == b""
        etag = head.headers["etag"]
        check_not_modified(client.get(url, headers={"if-none-match": etag}), protocol)
        last = BIG_SIZE - 1
        first = last - 1024 * 1024 + 1
        check_range(
            client.get(url, headers={"range": f"bytes={first}-{last}"}), protocol, first, last
        )
        check_range(client.get(url, headers={"range": "bytes=0-99"}), protocol, 0, 99)
        assert client.connections_opened == 1


@pytest.mark.parametrize("protocol", cells("sync", PROTOCOLS))
def test_sync_gzip_from_nginx(nginx: Nginx, tls: Any, protocol: str) -> None:
    url = nginx.base(protocol) + "/text.txt"
    with Client(**client_options(protocol, *tls)) as client:
        check_gzip(client.get(url), protocol)
        with client.stream("GET", url) as response:
            assert b"".join(response.iter_bytes()) == TEXT
    with Client(**client_options(protocol, *tls), decompress=False) as raw:
        response = raw.get(url)
        assert "content-encoding" not in response.headers
        assert response.content == TEXT


@pytest.mark.parametrize("protocol", cells("sync", CLOSING))
def test_sync_nginx_closes_kept_alive_connections(nginx: Nginx, tls: Any, protocol: str) -> None:
    url = nginx.base(protocol, short=True) + "/small.bin"
    sent: list[str] = []
    hooks = {"request": [lambda request: sent.append(str(request.url))]}
    with Client(**client_options(protocol, *tls), event_hooks=hooks) as client:
        for i in range(SEQUENTIAL):
            check_small(client.get(f"{url}?i={i}"))
        assert client.connections_opened == SEQUENTIAL // KEEPALIVE_REQUESTS, nginx.logs()
    check_attempts(protocol, sent)

    def one(i: int) -> str | None:
        try:
            check_small(client.get(f"{url}?c={i}"))
        except Exception as exc:  # collected: none is expected
            return f"{i}: {exc!r}"
        return None

    with (
        Client(**client_options(protocol, *tls)) as client,
        ThreadPoolExecutor(CONCURRENT) as pool,
    ):
        outcomes = list(pool.map(one, range(3 * CONCURRENT), timeout=TIMEOUT))
        assert [failure for failure in outcomes if failure] == []
        check_connections(client.connections_opened, 3 * CONCURRENT)


@pytest.mark.parametrize("protocol", cells("sync", CLOSING))
def test_sync_nginx_closes_idle_connections(nginx: Nginx, tls: Any, protocol: str) -> None:
    url = nginx.base(protocol, short=True) + "/small.bin"
    sent: list[str] = []
    hooks = {"request": [lambda request: sent.append(str(request.url))]}
    with Client(**client_options(protocol, *tls), event_hooks=hooks) as client:
        check_small(client.get(url))
        time.sleep(IDLE_TIMEOUT + 0.5)
        check_small(client.get(url))
        assert client.connections_opened == 2
    assert len(sent) == 2, sent
