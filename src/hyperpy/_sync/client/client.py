# GENERATED from src/hyperpy/_async/client/client.py by scripts/unasync.py: do not edit.
"""The client: builds requests, sends them over pooled connections, returns responses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlencode, urljoin

from ..._backends import SyncNetwork, SyncSocketNetwork
from ..._config import H2Settings, Timeout, TimeoutTypes, to_timeout
from ..._models import URL, ContentTypes, Headers, HeaderTypes, Request, Response
from ..._tls import VerifyTypes, client_ssl_context
from ..._version import __version__
from ..background import SyncBackgroundTasks
from .pool import SyncConnectionPool

if TYPE_CHECKING:
    from typing_extensions import Unpack

USER_AGENT = f"hyperpy/{__version__}"
QueryTypes = dict[str, Any] | list[tuple[str, Any]] | str | None
_DEFAULT: Any = object()


class RequestOptions(TypedDict, total=False):
    """What a request may carry besides its method and URL (see ``build_request``)."""

    params: QueryTypes
    headers: HeaderTypes
    content: ContentTypes
    text: str | None
    json: Any
    data: dict[str, Any] | None


class Client:
    """An HTTP/1.1 and HTTP/2 client with a connection pool.

    Use it as a context manager (required for HTTP/2, whose connections each
    have a reader running in the background)::

        with hyperpy.Client(http2=True) as client:
            response = client.get("https://example.org/")
            with client.stream("GET", "https://example.org/big") as response:
                for chunk in response.iter_bytes():
                    ...

    ``http2=True`` offers h2 by ALPN on https (HTTP/1.1 if the server declines);
    ``http2_prior_knowledge=True`` speaks h2c on http://. ``timeout`` is a
    ``Timeout`` or a number of seconds for every step; ``verify`` is True (the
    system's CAs), False, a CA bundle path or an ``ssl.SSLContext``.
    ``network`` is where connections go: the OS's sockets by default, or a
    ``hyperpy.testing`` memory network. One client may be shared by many
    concurrent threads.
    """

    def __init__(
        self,
        *,
        timeout: TimeoutTypes = Timeout(),
        verify: VerifyTypes = True,
        http1: bool = True,
        http2: bool = False,
        http2_prior_knowledge: bool = False,
        headers: HeaderTypes = None,
        base_url: str | None = None,
        max_connections: int | None = 100,
        max_keepalive_connections: int | None = 20,
        keepalive_expiry: float | None = 90.0,
        h2_settings: H2Settings = H2Settings(),
        network: SyncNetwork | None = None,
    ) -> None:
        self.timeout = to_timeout(timeout)
        self.headers = Headers([(b"user-agent", USER_AGENT.encode()), (b"accept", b"*/*")])
        for name, value in Headers(headers).raw:
            self.headers[name.decode("latin-1")] = value.decode("latin-1")
        self.base_url = base_url
        alpn = ("h2", "http/1.1") if http2 and http1 else ("h2",) if http2 else ("http/1.1",)
        self._verify = verify
        self._alpn = alpn
        self._background = SyncBackgroundTasks()
        self._pool = SyncConnectionPool(
            network=network if network is not None else SyncSocketNetwork(),
            ssl_context=None,
            http1=http1,
            http2=http2,
            http2_prior_knowledge=http2_prior_knowledge,
            h2_settings=h2_settings,
            max_connections=max_connections,
            max_keepalive=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            task_group=None,
        )

    @property
    def connections_opened(self) -> int:
        """How many connections this client has opened so far."""
        return self._pool.connections_opened

    def __enter__(self) -> Client:
        self._pool._task_group = self._background.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        try:
            self.close()
        finally:
            self._pool._task_group = None
            self._background.close(exc_type, exc, tb, cancel=True)

    def close(self) -> None:
        """Close every connection. Requests after this raise ``ClientClosed``."""
        self._pool.close()

    def build_request(
        self,
        method: str,
        url: str | URL,
        *,
        params: QueryTypes = None,
        headers: HeaderTypes = None,
        content: ContentTypes = None,
        text: str | None = None,
        json: Any = None,
        data: dict[str, Any] | None = None,
    ) -> Request:
        """A ``Request`` with the client's base URL and default headers applied."""
        target = str(url)
        if self.base_url is not None:
            target = urljoin(self.base_url, target)
        if params:
            query = params if isinstance(params, str) else urlencode(params, doseq=True)
            target = f"{target}{'&' if '?' in target else '?'}{query}"
        parsed = URL(target)
        # The request's own fields replace the client's defaults of the same name.
        raw = self.headers.raw
        if headers:
            own = Headers(headers).raw
            names = {name for name, _ in own}
            raw = [field for field in raw if field[0] not in names] + own
        else:
            names = set()
        if b"host" not in names:
            raw = [(b"host", parsed.authority.encode("idna")), *raw]
        merged = Headers.from_raw(raw)
        if data is not None and content is None:
            content = urlencode(data, doseq=True).encode()
            merged.setdefault("content-type", "application/x-www-form-urlencoded")
        return Request(method, parsed, headers=merged, content=content, text=text, json=json)

    def send(self, request: Request, *, stream: bool = False, timeout: Any = _DEFAULT) -> Response:
        """Send a built request. Unless ``stream``, the body is read before returning."""
        if request.url.scheme == "https" and self._pool._ssl_context is None:
            self._pool._ssl_context = client_ssl_context(self._verify, self._alpn)
        limits = self.timeout if timeout is _DEFAULT else to_timeout(timeout)
        response = self._pool.handle_request(request, limits)
        if not stream:
            try:
                response.read()
            except BaseException:
                response.close()
                raise
        return response

    def request(
        self,
        method: str,
        url: str | URL,
        *,
        timeout: Any = _DEFAULT,
        **options: Unpack[RequestOptions],
    ) -> Response:
        """Send a request and return the response with its body read.

        ``options`` are those of ``build_request``; ``timeout`` overrides the
        client's for this request.
        """
        request = self.build_request(method, url, **options)
        return self.send(request, timeout=timeout)

    @contextmanager
    def stream(
        self,
        method: str,
        url: str | URL,
        *,
        timeout: Any = _DEFAULT,
        **options: Unpack[RequestOptions],
    ) -> Iterator[Response]:
        """Send a request; yield the response before its body is read.

        Iterate the body with ``iter_bytes()``; leaving the block releases the
        connection (closing it if the body was not read to the end).
        """
        request = self.build_request(method, url, **options)
        response = self.send(request, stream=True, timeout=timeout)
        try:
            yield response
        finally:
            response.close()

    def get(
        self, url: str | URL, *, timeout: Any = _DEFAULT, **options: Unpack[RequestOptions]
    ) -> Response:
        """GET ``url``; keyword arguments as for ``request``."""
        return self.request("GET", url, timeout=timeout, **options)

    def head(
        self, url: str | URL, *, timeout: Any = _DEFAULT, **options: Unpack[RequestOptions]
    ) -> Response:
        return self.request("HEAD", url, timeout=timeout, **options)

    def options(
        self, url: str | URL, *, timeout: Any = _DEFAULT, **options: Unpack[RequestOptions]
    ) -> Response:
        return self.request("OPTIONS", url, timeout=timeout, **options)

    def delete(
        self, url: str | URL, *, timeout: Any = _DEFAULT, **options: Unpack[RequestOptions]
    ) -> Response:
        return self.request("DELETE", url, timeout=timeout, **options)

    def post(
        self, url: str | URL, *, timeout: Any = _DEFAULT, **options: Unpack[RequestOptions]
    ) -> Response:
        return self.request("POST", url, timeout=timeout, **options)

    def put(
        self, url: str | URL, *, timeout: Any = _DEFAULT, **options: Unpack[RequestOptions]
    ) -> Response:
        return self.request("PUT", url, timeout=timeout, **options)

    def patch(
        self, url: str | URL, *, timeout: Any = _DEFAULT, **options: Unpack[RequestOptions]
    ) -> Response:
        return self.request("PATCH", url, timeout=timeout, **options)
