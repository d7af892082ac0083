# GENERATED from src/hyperpy/_async/client/client.py by scripts/unasync.py: do not edit.
"""The client: builds requests, follows redirects, authenticates, keeps cookies,
decodes bodies and retries, over pooled connections (direct, Unix socket or proxy)."""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict

from ..._backends import SyncClock, SyncNetwork, SyncSocketNetwork
from ..._config import H2Settings, Timeout, TimeoutTypes, to_timeout
from ..._core.auth import Auth, AuthTypes, auth_from_url, to_auth
from ..._core.build import QueryTypes, build_request, is_replayable, rewind
from ..._core.cookies import Cookies, CookieTypes
from ..._core.deadline import Deadline, StepLimits, step_limits
from ..._core.decoders import accept_encoding, decoder_for
from ..._core.engine import choose as choose_engine
from ..._core.multipart import RequestData, RequestFiles
from ..._core.proxies import EnvProxies, Proxy, ProxyTypes, proxies_from_env, to_proxy
from ..._core.redirects import REDIRECT_STATUSES, next_request
from ..._core.retry import Retry
from ..._core.websocket import MAX_MESSAGE_SIZE
from ..._exceptions import (
    ConnectError,
    ConnectTimeout,
    RequestNotProcessed,
    StreamConsumed,
    TooManyRedirects,
)
from ..._models import URL, ContentTypes, Headers, HeaderTypes, Request, Response
from ..._tls import CertTypes, VerifyTypes, client_ssl_context
from ..._types import SyncEventHooks, SyncRequestHook, SyncResponseHook
from ..._version import __version__
from ..background import SyncBackgroundTasks
from ..websocket import WebSocket
from .body import SyncDecodedBody, SyncResponseBody
from .connect import Route
from .pool import SyncConnectionPool
from .websocket import open_websocket

if TYPE_CHECKING:
    from typing_extensions import Unpack

USER_AGENT = f"hyperpy/{__version__}"
_DEFAULT: Any = object()
# A redirect's body is read (to keep its connection) only when it is this small.
_DRAIN_LIMIT = 64 * 1024

RetryTypes = Retry | int | None


class RequestOptions(TypedDict, total=False):
    """What a request may carry besides its method and URL (see ``build_request``),
    and the per-request overrides of the client's settings."""

    params: QueryTypes
    headers: HeaderTypes
    cookies: CookieTypes
    content: ContentTypes
    text: str | None
    json: Any
    data: RequestData | None
    files: RequestFiles | None
    auth: AuthTypes
    follow_redirects: bool
    timeout: TimeoutTypes


class Client:
    """An HTTP/1.1 and HTTP/2 client with a connection pool.

    Use it as a context manager (required for HTTP/2, whose connections each
    have a reader running in the background)::

        with hyperpy.Client(http2=True, follow_redirects=True) as client:
            response = client.get("https://example.org/")
            with client.stream("GET", "https://example.org/big") as response:
                for chunk in response.iter_bytes():
                    ...

    The settings, with the names requests and httpx use (see docs/client.md):

    - ``auth``: ``(user, password)`` for Basic, ``DigestAuth``, an ``Auth`` flow
      or a callable; credentials in a URL become Basic auth.
    - ``params``, ``headers``, ``cookies``: defaults for every request;
      ``cookies`` is also the jar that keeps what servers set.
    - ``base_url``: relative URLs are appended to its path.
    - ``follow_redirects`` (False) and ``max_redirects`` (20).
    - ``timeout``: a ``Timeout`` (with an optional ``total`` deadline) or seconds.
    - ``retries``: a ``Retry`` policy, or a number of attempts (connection
      failures included); the default re-sends only what the protocol proves
      unprocessed, and an idempotent request once when the server closed a
      kept-alive connection under it.
    - ``verify``: True (the system's CAs), False, a CA path or an SSLContext;
      ``cert``: a client certificate.
    - ``http2`` offers h2 by ALPN on https; ``http2_prior_knowledge`` speaks
      h2c on http://.
    - ``proxy``: a URL or ``Proxy`` for every request; with ``trust_env`` (the
      default) HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY apply otherwise.
    - ``uds``: send every request over this Unix domain socket.
    - ``event_hooks``: ``{"request": [...], "response": [...]}``, called with
      each request sent and each response received (each one awaited).
    - ``decompress`` (True): decode gzip, deflate, br and zstd bodies, stopping
      at ``max_decompression_ratio``.
    - ``network``: the OS's sockets by default, or a ``hyperpy.testing``
      memory network.
    - ``engine``: the HTTP/1.1 parser, "h11" or "zttp" (``hyperpy[fast]``);
      by default ``HYPERPY_ENGINE``, else the fastest installed.

    One client may be shared by many concurrent threads.
    """

    def __init__(
        self,
        *,
        auth: AuthTypes = None,
        params: QueryTypes = None,
        headers: HeaderTypes = None,
        cookies: CookieTypes = None,
        timeout: TimeoutTypes = Timeout(),
        follow_redirects: bool = False,
        max_redirects: int = 20,
        retries: RetryTypes = None,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        http1: bool = True,
        http2: bool = False,
        http2_prior_knowledge: bool = False,
        proxy: ProxyTypes = None,
        trust_env: bool = True,
        uds: str | None = None,
        base_url: str | None = None,
        event_hooks: SyncEventHooks | None = None,
        decompress: bool = True,
        max_decompression_ratio: float | None = 100.0,
        max_connections: int | None = 100,
        max_keepalive_connections: int | None = 20,
        keepalive_expiry: float | None = 90.0,
        h2_settings: H2Settings = H2Settings(),
        network: SyncNetwork | None = None,
        engine: str | None = None,
    ) -> None:
        self.timeout = to_timeout(timeout)
        self.engine = choose_engine(engine)
        self.auth = to_auth(auth)
        self.params = params
        self.headers = Headers(
            [
                (b"user-agent", USER_AGENT.encode()),
                (b"accept", b"*/*"),
                (b"accept-encoding", (accept_encoding() if decompress else "identity").encode()),
            ]
        )
        for name, value in Headers(headers).raw:
            self.headers[name.decode("latin-1")] = value.decode("latin-1")
        self.cookies = Cookies(cookies)
        self.base_url = base_url
        self.follow_redirects = follow_redirects
        if max_redirects < 0:
            raise ValueError("max_redirects must be 0 or more")
        self.max_redirects = max_redirects
        self.retries = _to_retry(retries)
        hooks = event_hooks or {}
        unknown = set(hooks) - {"request", "response"}
        if unknown:
            raise ValueError(f"unknown event hooks {sorted(unknown)}: use 'request', 'response'")
        self._request_hooks: list[SyncRequestHook] = list(hooks.get("request", []))
        self._response_hooks: list[SyncResponseHook] = list(hooks.get("response", []))
        self._decompress = decompress
        self._max_ratio = max_decompression_ratio
        self._proxy = to_proxy(proxy)
        env = proxies_from_env(os.environ) if trust_env and self._proxy is None else None
        # Without any proxy variable set, requests skip the NO_PROXY matching.
        self._env: EnvProxies | None = env if env and (env.http or env.https or env.all) else None
        self._uds = uds
        self._verify = verify
        self._cert = cert
        self._alpn = ("h2", "http/1.1") if http2 and http1 else ("h2",) if http2 else ("http/1.1",)
        # Built now, so that a missing CA file or certificate fails here, not at the
        # first https request (the default context is shared, so this is cheap).
        self._ssl_context = client_ssl_context(verify, self._alpn, cert)
        self._h1_ssl_context: ssl.SSLContext | None = None  # WebSockets, https proxies
        self._pool_settings: dict[str, Any] = {
            "http1": http1,
            "http2": http2,
            "http2_prior_knowledge": http2_prior_knowledge,
            "h2_settings": h2_settings,
            "max_connections": max_connections,
            "max_keepalive": max_keepalive_connections,
            "keepalive_expiry": keepalive_expiry,
            "engine": self.engine,
        }
        self._network = network if network is not None else SyncSocketNetwork()
        self._background = SyncBackgroundTasks()
        self._task_group: Any = None
        self._closed = False
        # One pool per route: direct (or the Unix socket), and one per proxy used.
        self._pools: dict[Proxy | None, SyncConnectionPool] = {}
        self._pool = self._pool_for(None)

    # -- lifetime -------------------------------------------------------------

    @property
    def connections_opened(self) -> int:
        """How many connections this client has opened so far."""
        return sum(pool.connections_opened for pool in self._pools.values())

    def __enter__(self) -> Client:
        self._task_group = self._background.open()
        for pool in self._pools.values():
            pool._task_group = self._task_group
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
            for pool in self._pools.values():
                pool._task_group = None
            self._task_group = None
            self._background.close(exc_type, exc, tb, cancel=True)

    def close(self) -> None:
        """Close every connection. Requests after this raise ``ClientClosed``."""
        self._closed = True
        for pool in list(self._pools.values()):
            pool.close()

    def _pool_for(self, proxy: Proxy | None) -> SyncConnectionPool:
        pool = self._pools.get(proxy)
        if pool is None:
            # (Two threads may both get here: setdefault keeps one pool per proxy.)
            proxy_tls = None
            if proxy is not None and proxy.scheme == "https":
                if self._h1_ssl_context is None:
                    self._h1_ssl_context = client_ssl_context(
                        self._verify, ("http/1.1",), self._cert
                    )
                proxy_tls = self._h1_ssl_context
            pool = SyncConnectionPool(
                network=self._network,
                ssl_context=self._ssl_context,
                task_group=self._task_group,
                route=Route(
                    proxy=proxy, uds=self._uds if proxy is None else None, proxy_tls=proxy_tls
                ),
                **self._pool_settings,
            )
            if self._closed:
                pool._closed = True
            pool = self._pools.setdefault(proxy, pool)
        return pool

    def _route(self, url: URL) -> SyncConnectionPool:
        if self._uds is not None:
            proxy = None
        elif self._proxy is not None:
            proxy = self._proxy
        elif self._env is not None:
            proxy = self._env.select(url.scheme, url.host, url.port)
        else:
            proxy = None
        return self._pool_for(proxy)

    # -- building -------------------------------------------------------------

    def build_request(
        self,
        method: str,
        url: str | URL,
        *,
        params: QueryTypes = None,
        headers: HeaderTypes = None,
        cookies: CookieTypes = None,
        content: ContentTypes = None,
        text: str | None = None,
        json: Any = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
    ) -> Request:
        """A ``Request`` with the client's base URL, parameters and headers applied.

        ``content`` is bytes, text or an (async) iterable of bytes; ``text`` and
        ``json`` encode as UTF-8; ``data`` is a form (with ``files``: multipart,
        each file streamed from its object, never read whole).
        """
        return build_request(
            method,
            url,
            base_url=self.base_url,
            default_headers=self.headers,
            default_params=self.params,
            params=params,
            headers=headers,
            cookies=cookies,
            jar=self.cookies,
            content=content,
            text=text,
            json=json,
            data=data,
            files=files,
        )

    # -- sending --------------------------------------------------------------

    def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        auth: AuthTypes = _DEFAULT,
        follow_redirects: bool = _DEFAULT,
        timeout: TimeoutTypes = _DEFAULT,
    ) -> Response:
        """Send a built request. Unless ``stream``, the body is read before returning.

        ``auth``, ``follow_redirects`` and ``timeout`` override the client's for
        this request (its redirects and retries included).
        """
        steps = self.timeout if timeout is _DEFAULT else to_timeout(timeout)
        limits = step_limits(steps, SyncClock.now)
        follow = self.follow_redirects if follow_redirects is _DEFAULT else follow_redirects
        flow = self.auth if auth is _DEFAULT else to_auth(auth)
        if flow is None and request.url.username:
            flow = auth_from_url(request.url.username, request.url.password)
        response = self._send_following(request, flow, follow, limits)
        if not stream:
            try:
                response.read()
            except BaseException:
                response.close()
                raise
        return response

    def _send_following(
        self, request: Request, flow: Auth | None, follow: bool, limits: StepLimits
    ) -> Response:
        history: list[Response] = []
        redirects = 0
        while True:
            response = self._send_authenticated(request, flow, limits, history)
            if history:
                response.history = list(history)
            if not follow or response.status not in REDIRECT_STATUSES:
                return response
            location = response.headers.get("location")
            if not location:
                return response
            if redirects >= self.max_redirects:
                response.close()
                raise TooManyRedirects(
                    f"more than {self.max_redirects} redirects, the last to {location}",
                    history=[*history, response],
                )
            self._discard(response)
            history.append(response)
            redirects += 1
            follow_up = next_request(request, response.status, location)
            if follow_up.url.origin != request.url.origin and flow is not None:
                # Credentials were for the first origin only (userinfo included).
                flow = None
            if follow_up.url.username:
                flow = auth_from_url(follow_up.url.username, follow_up.url.password)
            if follow_up.is_streaming and not is_replayable(request):
                raise StreamConsumed(
                    f"a {response.status} redirect needs the request body again, but it"
                    " was a one-shot stream: pass bytes to follow this redirect"
                )
            request = follow_up

    def _discard(self, response: Response) -> None:
        """Finish with a redirect's body: read a small one (its connection stays
        reusable), abandon a large one."""
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) <= _DRAIN_LIMIT:
            try:
                response.read()
            except Exception:
                response.close()
        else:
            response.close()

    def _send_authenticated(
        self, request: Request, flow: Auth | None, limits: StepLimits, history: list[Response]
    ) -> Response:
        if flow is None:
            return self._send_retrying(request, limits)
        steps = flow.auth_flow(request)
        request = next(steps)
        while True:
            response = self._send_retrying(request, limits)
            try:
                if flow.requires_response_body:
                    response.read()
                try:
                    request = steps.send(response)
                except StopIteration:
                    return response
                self._discard(response)
                history.append(response)
            except BaseException:
                response.close()
                steps.close()
                raise

    def _send_retrying(self, request: Request, limits: StepLimits) -> Response:
        """One hop: the request is sent again as the retry policy allows (connection
        failures, and the statuses it names), sleeping its backoff in between."""
        retry = self.retries
        method = request.method
        while True:
            rewind(request)
            try:
                response = self._send_once(request, limits)
            except RequestNotProcessed as exc:
                # The server did not process it: send it again at once if the policy
                # allows (it raises the caller's error when not).
                retry = retry.increment(method, exc, replayable=is_replayable(request))
                continue
            except (ConnectError, ConnectTimeout) as exc:
                retry = retry.increment_connect(method, exc)
                if not self._backoff(retry.sleep_time(None, time.time()), limits):
                    raise
                continue
            if not (retry.status_forcelist or retry.retry_after_status_codes):
                return response  # the policy retries no status: skip the header scan
            has_retry_after = "retry-after" in response.headers
            if not retry.is_retry_status(method, response.status, has_retry_after):
                return response
            if not is_replayable(request):
                return response
            retry = retry.increment_status(method, response.status)  # one is left
            wait = retry.sleep_time(response.headers.get("retry-after"), time.time())
            if isinstance(limits, Deadline) and wait >= limits.left():
                return response  # no time left to try again
            self._discard(response)  # a small body: the connection stays usable
            self._backoff(wait, limits)

    @staticmethod
    def _backoff(seconds: float, limits: StepLimits) -> bool:
        """Sleep before a retry; False if the total deadline leaves no time for it."""
        if isinstance(limits, Deadline) and seconds >= limits.left():
            return False
        if seconds > 0:
            SyncClock.sleep(seconds)
        return True

    def _send_once(self, request: Request, limits: StepLimits) -> Response:
        if not self.cookies.is_empty and b"cookie" not in (n for n, _ in request.headers.raw):
            self.cookies.set_cookie_header(request)
        for hook in self._request_hooks:
            hook(request)
        pool = self._route(request.url)
        start = SyncClock.now()
        response = pool.handle_request(request, limits)
        response.elapsed = timedelta(seconds=SyncClock.now() - start)
        names = {name for name, _ in response.headers.raw}
        if b"set-cookie" in names:
            set_here = Cookies()
            set_here.extract_cookies(response)
            response.cookies = set_here
            self.cookies.extract_cookies(response)
        try:
            if self._decompress and b"content-encoding" in names:
                self._decode(response)
            for on_response in self._response_hooks:
                on_response(response)
        except BaseException:
            response.close()
            raise
        return response

    def _decode(self, response: Response) -> None:
        coding = response.headers.get("content-encoding")
        if not coding or not isinstance(response._stream, SyncResponseBody):
            return
        decoder = decoder_for(coding, max_ratio=self._max_ratio)
        if decoder is not None:
            response._stream = SyncDecodedBody(response._stream, decoder)

    # -- WebSockets -------------------------------------------------------------

    @contextmanager
    def websocket(
        self,
        url: str | URL,
        *,
        subprotocols: list[str] | None = None,
        params: QueryTypes = None,
        headers: HeaderTypes = None,
        max_message_size: int = MAX_MESSAGE_SIZE,
        timeout: TimeoutTypes = _DEFAULT,
    ) -> Iterator[WebSocket]:
        """Open a WebSocket (``ws://``, ``wss://``, or http(s) URLs) and yield it.

        It runs on a connection of its own (HTTP/1.1, through the client's proxy
        if any), closed with the block. ``WebSocketHandshakeError`` if the server
        refuses; messages over ``max_message_size`` close it with 1009.
        """
        text = str(url)
        if text[:5].lower() in ("ws://", "wss:/"):
            text = "http" + text[2:]
        request = self.build_request("GET", text, params=params, headers=headers)
        if not self.cookies.is_empty:
            self.cookies.set_cookie_header(request)
        steps = self.timeout if timeout is _DEFAULT else to_timeout(timeout)
        limits = step_limits(steps, SyncClock.now)
        pool = self._route(request.url)
        tls = None
        if request.url.scheme == "https":
            # Its own ALPN: a WebSocket opens over HTTP/1.1 even where h2 is offered.
            if self._h1_ssl_context is None:
                self._h1_ssl_context = client_ssl_context(self._verify, ("http/1.1",), self._cert)
            tls = self._h1_ssl_context
        ws = open_websocket(
            self._network,
            pool._route,
            tls,
            request,
            subprotocols,
            max_message_size,
            limits,
            self.engine,
        )
        with ws:  # an error in the block closes with 1011, else 1000
            yield ws

    # -- the verbs --------------------------------------------------------------

    def request(self, method: str, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """Send a request and return the response with its body read.

        ``options`` are those of ``build_request`` plus ``auth``,
        ``follow_redirects`` and ``timeout`` for this request only.
        """
        overrides = _overrides(options)
        request = self.build_request(method, url, **options)  # type: ignore[misc]
        return self.send(request, **overrides)

    @contextmanager
    def stream(
        self, method: str, url: str | URL, **options: Unpack[RequestOptions]
    ) -> Iterator[Response]:
        """Send a request; yield the response before its body is read.

        Iterate the body with ``iter_bytes()``, ``iter_text()`` or
        ``iter_lines()``; leaving the block releases the connection (closing it
        if the body was not read to the end).
        """
        overrides = _overrides(options)
        request = self.build_request(method, url, **options)  # type: ignore[misc]
        response = self.send(request, stream=True, **overrides)
        try:
            yield response
        finally:
            response.close()

    def get(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """GET ``url``; keyword arguments as for ``request``."""
        return self.request("GET", url, **options)

    def head(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """HEAD ``url``; keyword arguments as for ``request``."""
        return self.request("HEAD", url, **options)

    def options(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """OPTIONS ``url``; keyword arguments as for ``request``."""
        return self.request("OPTIONS", url, **options)

    def delete(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """DELETE ``url``; keyword arguments as for ``request``."""
        return self.request("DELETE", url, **options)

    def post(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """POST ``url``; keyword arguments as for ``request``."""
        return self.request("POST", url, **options)

    def put(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """PUT ``url``; keyword arguments as for ``request``."""
        return self.request("PUT", url, **options)

    def patch(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """PATCH ``url``; keyword arguments as for ``request``."""
        return self.request("PATCH", url, **options)


def _overrides(options: RequestOptions) -> dict[str, Any]:
    """Pop the per-request overrides of the client's settings out of ``options``."""
    return {
        name: options.pop(name)  # type: ignore[misc]
        for name in ("auth", "follow_redirects", "timeout")
        if name in options
    }


def _to_retry(value: RetryTypes) -> Retry:
    if value is None:
        return Retry()
    if isinstance(value, Retry):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # A number of attempts, as httpx's ``retries``: for failed connections too.
        return Retry(total=value, connect=value)
    raise TypeError(f"retries must be a Retry, a number of attempts or None, not {value!r}")
