"""Python HTTP clients against hyperpy's servers: httpx, urllib3, requests, aiohttp, niquests.

Every client runs the same cases against four servers (tests/interop/_servers.py):
a native handler on the blocking ``Server`` and on the trio ``AsyncServer``, Flask
behind ``WSGIAdapter`` on ``Server``, Starlette behind ``ASGIAdapter`` on
``AsyncServer``. The client runs in the test thread for the blocking server (which
serves from threads of its own) and in a worker thread for the trio server (which
serves from the test's trio loop); aiohttp and httpx's AsyncClient get an asyncio
loop of their own in that thread.

Over HTTP/1.1, HTTP/1.1 with TLS and, for httpx and niquests, HTTP/2 with TLS (ALPN).
The cases: a query string, a 1 MiB echo, a chunked (generator) upload, a 4 MiB
streamed download, HEAD, a 404, a custom header and two Set-Cookie fields,
keep-alive (the server counts the connections), and for HTTP/2 clients several
requests at once over one connection. Bodies are read as streams, but for the
concurrent HTTP/2 checks.

niquests brings urllib3-future, which by default overwrites the ``urllib3``
package: the urllib3 and requests cells then skip (fail in CI) rather than test
the fork under urllib3's name (see ``require_genuine_urllib3``).
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import httpx
import niquests
import pytest
import requests
import trio
import trustme
import urllib3
from _servers import (
    BLOB,
    CHUNK,
    CUSTOM,
    GATE_PARTIES,
    HEADERS_BODY,
    serve_async,
    serve_sync,
    sha256,
)
from peers import in_ci, interop
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.responses import StreamingResponse
from starlette.routing import Route

from hyperpy import AsyncServer
from hyperpy.asgi import ASGIAdapter

TIMEOUT = 15.0  # each client's own timeout
CASE_TIMEOUT = 40.0  # the bound on one case, client start and close included
BIG = os.urandom(1024 * 1024)  # 1 MiB to echo
QUERY = [("a", "1"), ("a", "2"), ("b", "two words"), ("c", "é&=/?+"), ("empty", "")]
KEEPALIVE_REQUESTS = 20

Content = bytes | Iterator[bytes] | None
Params = list[tuple[str, Any]] | None


@dataclass
class Reply:
    """A response as every client library sees it, read as a stream to the end."""

    status: int
    version: str  # "HTTP/1.1" or "HTTP/2"
    headers: list[tuple[str, str]]  # lower-case names, repeated fields kept apart
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.header_list(name)
        return ", ".join(values) if values else None

    def header_list(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def json(self) -> Any:
        return json.loads(self.body)


class Driver(Protocol):
    """One client library behind one interface; made and used in a single thread."""

    def request(
        self, method: str, url: str, *, params: Params = None, content: Content = None
    ) -> Reply: ...

    def cookies(self) -> dict[str, str] | None:
        """The client's cookie jar (name: value), or None when it keeps none."""

    def concurrent(self, first: str, url: str, count: int) -> list[Reply]:
        """GET ``first``, then ``count`` GETs of ``url`` at once (HTTP/2 clients)."""
        raise NotImplementedError

    def close(self) -> None: ...


_VERSIONS = {10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2", 30: "HTTP/3"}


def _lower(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name.lower(), value) for name, value in items]


def _verify(ca_file: str | None) -> ssl.SSLContext | bool:
    # A fresh context per client: httpx sets ALPN on the context it is given.
    return ssl.create_default_context(cafile=ca_file) if ca_file else True


# -- the drivers ----------------------------------------------------------------------


class HttpxDriver:
    def __init__(self, ca_file: str | None, http2: bool) -> None:
        self._ca_file = ca_file
        self._http2 = http2
        self._client = httpx.Client(http2=http2, verify=_verify(ca_file), timeout=TIMEOUT)

    def _reply(self, response: Any, body: bytes) -> Reply:
        headers = _lower(response.headers.multi_items())
        return Reply(response.status_code, response.http_version, headers, body)

    def request(
        self, method: str, url: str, *, params: Params = None, content: Content = None
    ) -> Reply:
        with self._client.stream(method, url, params=params, content=content) as response:
            body = b"".join(response.iter_raw(CHUNK))
            return self._reply(response, body)

    def cookies(self) -> dict[str, str] | None:
        return dict(self._client.cookies)

    def concurrent(self, first: str, url: str, count: int) -> list[Reply]:
        async def run() -> list[Reply]:
            async with httpx.AsyncClient(
                http2=self._http2, verify=_verify(self._ca_file), timeout=TIMEOUT
            ) as client:
                # The first request opens the connection the others multiplex on.
                responses = [await client.get(first)]
                responses += await asyncio.gather(*(client.get(url) for _ in range(count)))
            return [self._reply(r, r.content) for r in responses]

        return asyncio.run(run())

    def close(self) -> None:
        self._client.close()


class Urllib3Driver:
    def __init__(self, ca_file: str | None) -> None:
        self._pool = urllib3.PoolManager(
            retries=False, timeout=urllib3.Timeout(TIMEOUT), ca_certs=ca_file
        )

    def request(
        self, method: str, url: str, *, params: Params = None, content: Content = None
    ) -> Reply:
        options: dict[str, Any] = {}
        if params is not None:
            options["fields"] = params  # urlencoded into the URL for GET
        if content is not None:
            options["body"] = content
            options["chunked"] = not isinstance(content, bytes)
        response = self._pool.request(method, url, preload_content=False, **options)
        try:
            body = b"".join(response.stream(CHUNK, decode_content=False))
        finally:
            response.release_conn()
        version = _VERSIONS[response.version]
        return Reply(response.status, version, _lower(response.headers.items()), body)

    def cookies(self) -> dict[str, str] | None:
        return None

    def concurrent(self, first: str, url: str, count: int) -> list[Reply]:
        raise NotImplementedError

    def close(self) -> None:
        self._pool.clear()


class RequestsDriver:
    def __init__(self, ca_file: str | None) -> None:
        self._session = requests.Session()
        # Not the environment's: REQUESTS_CA_BUNDLE would win over session.verify.
        self._session.trust_env = False
        self._session.verify = ca_file or True

    def request(
        self, method: str, url: str, *, params: Params = None, content: Content = None
    ) -> Reply:
        response = self._session.request(
            method, url, params=params, data=content, stream=True, timeout=TIMEOUT
        )
        with response:
            body = b"".join(response.iter_content(CHUNK))
        # response.headers joins repeated fields; the urllib3 response keeps them apart.
        headers = _lower(response.raw.headers.items())
        return Reply(response.status_code, _VERSIONS[response.raw.version], headers, body)

    def cookies(self) -> dict[str, str] | None:
        return {name: value or "" for name, value in self._session.cookies.get_dict().items()}

    def concurrent(self, first: str, url: str, count: int) -> list[Reply]:
        raise NotImplementedError

    def close(self) -> None:
        self._session.close()


class AiohttpDriver:
    """aiohttp on an asyncio loop owned by this driver (and so by its thread)."""

    def __init__(self, ca_file: str | None) -> None:
        self._loop = asyncio.new_event_loop()
        verify = _verify(ca_file)

        async def make() -> aiohttp.ClientSession:
            return aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=verify),
                # The default jar ignores cookies from IP addresses such as 127.0.0.1.
                cookie_jar=aiohttp.CookieJar(unsafe=True),
                timeout=aiohttp.ClientTimeout(total=TIMEOUT),
            )

        self._session = self._loop.run_until_complete(make())

    def request(
        self, method: str, url: str, *, params: Params = None, content: Content = None
    ) -> Reply:
        async def pieces(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        async def run() -> Reply:
            data = content if content is None or isinstance(content, bytes) else pieces(content)
            async with self._session.request(method, url, params=params, data=data) as response:
                body = b"".join([chunk async for chunk in response.content.iter_chunked(CHUNK)])
                assert response.version is not None
                version = f"HTTP/{response.version.major}.{response.version.minor}"
                return Reply(response.status, version, _lower(response.headers.items()), body)

        return self._loop.run_until_complete(run())

    def cookies(self) -> dict[str, str] | None:
        return {cookie.key: cookie.value for cookie in self._session.cookie_jar}

    def concurrent(self, first: str, url: str, count: int) -> list[Reply]:
        raise NotImplementedError

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._session.close())
        finally:
            self._loop.close()


class NiquestsDriver:
    def __init__(self, ca_file: str | None, http2: bool) -> None:
        self._ca_file = ca_file
        self._http2 = http2
        self._session = self._make()

    def _make(self, **options: Any) -> Any:
        # No HTTP/3 (nothing listens for QUIC) and no revocation check (no network).
        session = niquests.Session(
            verify=self._ca_file or True,
            disable_http2=not self._http2,
            disable_http3=True,
            revocation_configuration=None,
            timeout=TIMEOUT,
            **options,
        )
        # Not the environment's: REQUESTS_CA_BUNDLE would win over the session's verify.
        session.trust_env = False
        return session

    @staticmethod
    def _reply(response: Any, body: bytes) -> Reply:
        version = _VERSIONS[response.raw.version]
        headers = _lower(response.raw.headers.items())
        return Reply(response.status_code, version, headers, body)

    def request(
        self, method: str, url: str, *, params: Params = None, content: Content = None
    ) -> Reply:
        response = self._session.request(method, url, params=params, data=content, stream=True)
        try:
            body = b"".join(response.iter_content(CHUNK))
            return self._reply(response, body)
        finally:
            response.close()

    def cookies(self) -> dict[str, str] | None:
        return dict(self._session.cookies.get_dict())

    def concurrent(self, first: str, url: str, count: int) -> list[Reply]:
        # A multiplexed session sends without waiting; gather() collects the answers.
        with self._make(multiplexed=True) as session:
            responses = [session.get(first)]
            session.gather()
            responses += [session.get(url) for _ in range(count)]
            session.gather()
            return [self._reply(r, r.content) for r in responses]

    def close(self) -> None:
        self._session.close()


# -- the clients of the matrix --------------------------------------------------------


def require_genuine_urllib3() -> None:
    """Skip (fail in CI) when the ``urllib3`` module is in fact urllib3-future.

    niquests depends on urllib3-future, which by default replaces the files of the
    ``urllib3`` package (its versions end in .9xx); requests and "urllib3" would
    then not be the real urllib3. Installing with ``URLLIB3_NO_OVERRIDE=1`` and
    ``--no-binary urllib3-future`` keeps them apart.
    """
    version = str(getattr(urllib3, "__version__", ""))
    patch = version.rsplit(".", 1)[-1]
    if patch.isdigit() and int(patch) >= 900:
        message = (
            f"the urllib3 module is urllib3-future {version}, not urllib3: "
            "install with URLLIB3_NO_OVERRIDE=1 pip install --no-binary urllib3-future"
        )
        if in_ci():
            pytest.fail(f"{message} (required in CI)", pytrace=False)
        pytest.skip(message)


@dataclass(frozen=True)
class ClientSpec:
    name: str  # the test id
    peer: str  # the matrix's peer
    protocol: str  # the matrix's protocol label
    tls: bool
    version: str  # what every reply must say
    make: Callable[[str | None], Driver]
    check: Callable[[], None] = lambda: None


def _spec(
    peer: str,
    protocol: str,
    make: Callable[[str | None], Driver],
    check: Callable[[], None] = lambda: None,
) -> ClientSpec:
    suffix = {"HTTP/1.1": "", "HTTP/1.1 TLS": "-tls", "HTTP/2 TLS": "-h2"}[protocol]
    version = "HTTP/2" if protocol == "HTTP/2 TLS" else "HTTP/1.1"
    return ClientSpec(peer + suffix, peer, protocol, protocol != "HTTP/1.1", version, make, check)


CLIENTS = [
    _spec("httpx", "HTTP/1.1", lambda ca: HttpxDriver(ca, http2=False)),
    _spec("httpx", "HTTP/1.1 TLS", lambda ca: HttpxDriver(ca, http2=False)),
    _spec("httpx", "HTTP/2 TLS", lambda ca: HttpxDriver(ca, http2=True)),
    _spec("urllib3", "HTTP/1.1", Urllib3Driver, require_genuine_urllib3),
    _spec("urllib3", "HTTP/1.1 TLS", Urllib3Driver, require_genuine_urllib3),
    _spec("requests", "HTTP/1.1", RequestsDriver, require_genuine_urllib3),
    _spec("requests", "HTTP/1.1 TLS", RequestsDriver, require_genuine_urllib3),
    # aiohttp uses the SSLContext it is given as it is, here one without ALPN: the
    # server must fall back to HTTP/1.1.
    _spec("aiohttp", "HTTP/1.1", AiohttpDriver),
    _spec("aiohttp", "HTTP/1.1 TLS", AiohttpDriver),
    _spec("niquests", "HTTP/1.1", lambda ca: NiquestsDriver(ca, http2=False)),
    _spec("niquests", "HTTP/1.1 TLS", lambda ca: NiquestsDriver(ca, http2=False)),
    _spec("niquests", "HTTP/2 TLS", lambda ca: NiquestsDriver(ca, http2=True)),
]


# -- the cases ------------------------------------------------------------------------


def _ok(reply: Reply, spec: ClientSpec, status: int = 200) -> None:
    assert (reply.status, reply.version) == (status, spec.version), reply


def _pieces(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


def case_query(driver: Driver, base: str, spec: ClientSpec) -> None:
    reply = driver.request("GET", base + "/query", params=QUERY)
    _ok(reply, spec)
    assert reply.json() == {"method": "GET", "pairs": [list(pair) for pair in QUERY]}


def case_echo(driver: Driver, base: str, spec: ClientSpec) -> None:
    reply = driver.request("POST", base + "/echo", content=BIG)
    _ok(reply, spec)
    assert (len(reply.body), sha256(reply.body)) == (len(BIG), sha256(BIG))
    assert reply.header("x-request-length") == str(len(BIG))


def case_streamed_upload(driver: Driver, base: str, spec: ClientSpec) -> None:
    reply = driver.request("POST", base + "/echo", content=_pieces(BIG))
    _ok(reply, spec)
    assert (len(reply.body), sha256(reply.body)) == (len(BIG), sha256(BIG))
    if spec.version == "HTTP/1.1":
        # A body of unknown length goes chunked over HTTP/1.1 (HTTP/2 has frames).
        assert reply.header("x-request-te") == "chunked"


def case_streamed_download(driver: Driver, base: str, spec: ClientSpec) -> None:
    reply = driver.request("GET", f"{base}/download?size={len(BLOB)}")
    _ok(reply, spec)
    assert (len(reply.body), sha256(reply.body)) == (len(BLOB), sha256(BLOB))
    assert reply.header("content-length") is None  # a generator: the size is not known
    if spec.version == "HTTP/1.1":
        assert reply.header("transfer-encoding") == "chunked"


def case_head(driver: Driver, base: str, spec: ClientSpec) -> None:
    reply = driver.request("HEAD", base + "/headers")
    _ok(reply, spec)
    assert reply.body == b""
    assert reply.header("content-length") == str(len(HEADERS_BODY))
    assert reply.header(CUSTOM[0]) == CUSTOM[1]
    # A streamed body of unknown length: the head only, still.
    reply = driver.request("HEAD", f"{base}/download?size={len(BLOB)}")
    _ok(reply, spec)
    assert reply.body == b""
    # The connection is still in step after the bodiless answers.
    reply = driver.request("GET", base + "/headers")
    _ok(reply, spec)
    assert reply.body == HEADERS_BODY


def case_not_found(driver: Driver, base: str, spec: ClientSpec) -> None:
    _ok(driver.request("GET", base + "/nowhere"), spec, 404)
    _ok(driver.request("POST", base + "/nowhere", content=b"ignored"), spec, 404)
    _ok(driver.request("GET", base + "/peer"), spec)


def case_headers_and_cookies(driver: Driver, base: str, spec: ClientSpec) -> None:
    reply = driver.request("GET", base + "/headers")
    _ok(reply, spec)
    assert reply.body == HEADERS_BODY
    assert reply.header(CUSTOM[0]) == CUSTOM[1]
    cookies = reply.header_list("set-cookie")
    assert sorted(cookie.split(";")[0] for cookie in cookies) == ["a=1", "b=2"], cookies
    assert all("path=/" in cookie.lower() for cookie in cookies)
    assert any(c.startswith("b=2") and "httponly" in c.lower() for c in cookies)
    jar = driver.cookies()
    if jar is not None:
        assert (jar.get("a"), jar.get("b")) == ("1", "2"), jar


def case_keepalive(driver: Driver, base: str, spec: ClientSpec) -> None:
    peers = set()
    for _ in range(KEEPALIVE_REQUESTS):
        reply = driver.request("GET", base + "/peer")
        _ok(reply, spec)
        seen = reply.json()
        assert seen["version"] == spec.version.removeprefix("HTTP/")
        peers.add(seen["peer"])
    # Counted by the server, from the client ports it saw.
    assert len(peers) <= (1 if spec.version == "HTTP/2" else 2), peers


def case_multiplexed(driver: Driver, base: str, spec: ClientSpec) -> None:
    # /gate answers only once GATE_PARTIES requests wait in it together.
    replies = driver.concurrent(base + "/peer", base + "/gate", GATE_PARTIES)
    assert len(replies) == GATE_PARTIES + 1
    for reply in replies:
        _ok(reply, spec)
        assert reply.json()["version"] == "2"
    peers = {reply.json()["peer"] for reply in replies}
    assert len(peers) == 1, peers


CASES: dict[str, Callable[[Driver, str, ClientSpec], None]] = {
    "query": case_query,
    "echo": case_echo,
    "streamed-upload": case_streamed_upload,
    "streamed-download": case_streamed_download,
    "head": case_head,
    "not-found": case_not_found,
    "headers-cookies": case_headers_and_cookies,
    "keepalive": case_keepalive,
    "multiplexed": case_multiplexed,
}


def _params(world: str, flavours: dict[str, str]) -> list[Any]:
    params = []
    for flavour, label in flavours.items():
        for spec in CLIENTS:
            for case in CASES:
                if case == "multiplexed" and spec.version != "HTTP/2":
                    continue
                params.append(
                    pytest.param(
                        flavour,
                        spec,
                        case,
                        id=f"{label}-{spec.name}-{case}",
                        marks=interop(spec.peer, spec.protocol, world=world),
                    )
                )
    return params


def run_case(spec: ClientSpec, case: str, base: str, ca_file: str | None) -> None:
    """Make the client, run one case with it, close it (all in the calling thread)."""
    driver = spec.make(ca_file)
    try:
        CASES[case](driver, base, spec)
    finally:
        driver.close()


@pytest.fixture(autouse=True)
def _client_available(request: pytest.FixtureRequest) -> None:
    # In a fixture, not in the (trio) test: a skip raised there would lose its reason.
    spec = getattr(getattr(request.node, "callspec", None), "params", {}).get("spec")
    if isinstance(spec, ClientSpec):
        spec.check()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("python-clients") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


# -- the two worlds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flavour", "spec", "case"), _params("sync", {"native": "native", "adapter": "flask"})
)
def test_sync_server(
    flavour: Any,
    spec: ClientSpec,
    case: str,
    server_ssl_context: ssl.SSLContext,
    ca_file: str,
) -> None:
    with serve_sync(flavour, server_ssl_context if spec.tls else None) as server:
        run_case(spec, case, server.url, ca_file if spec.tls else None)


@pytest.mark.parametrize(
    ("flavour", "spec", "case"), _params("async", {"native": "native", "adapter": "starlette"})
)
async def test_async_server(
    flavour: Any,
    spec: ClientSpec,
    case: str,
    server_ssl_context: ssl.SSLContext,
    ca_file: str,
) -> None:
    # Bounds the server's shutdown too: an app left running would hold it open.
    with trio.fail_after(CASE_TIMEOUT):
        async with serve_async(flavour, server_ssl_context if spec.tls else None) as server:
            # The client blocks its thread; the server keeps serving on this trio loop.
            await trio.to_thread.run_sync(
                run_case,
                spec,
                case,
                server.url,
                ca_file if spec.tls else None,
                abandon_on_cancel=True,
            )


# -- regressions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "tls",
    [
        pytest.param(False, id="http1", marks=interop("httpx", "HTTP/1.1", world="async")),
        pytest.param(True, id="h2", marks=interop("httpx", "HTTP/2 TLS", world="async")),
    ],
)
async def test_asgi_head_of_an_endless_stream_stops_the_app(
    tls: bool, server_ssl_context: ssl.SSLContext, ca_file: str
) -> None:
    """A HEAD answered by a streaming ASGI response: the server never reads the body,
    and the app, blocked sending it, used to keep the server from ever shutting down."""
    stopped = trio.Event()

    async def endless(request: StarletteRequest) -> StarletteResponse:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"x" * CHUNK
                    await trio.sleep(0)
            finally:
                stopped.set()

        return StreamingResponse(chunks())

    def head(url: str) -> Reply:
        driver = HttpxDriver(ca_file if tls else None, http2=tls)
        try:
            return driver.request("HEAD", url)
        finally:
            driver.close()

    app = ASGIAdapter(Starlette(routes=[Route("/endless", endless)]))
    with trio.fail_after(10):
        async with AsyncServer(app, port=0, ssl=server_ssl_context if tls else None) as server:
            reply = await trio.to_thread.run_sync(
                head, server.url + "/endless", abandon_on_cancel=True
            )
            assert (reply.status, reply.body) == (200, b"")
            assert reply.version == ("HTTP/2" if tls else "HTTP/1.1")
            await stopped.wait()  # the app was stopped, not left blocked
