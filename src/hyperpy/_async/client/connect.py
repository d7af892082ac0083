"""Opening the byte stream under a client connection: directly, over a Unix
socket, or through a proxy (a CONNECT tunnel, SOCKS5, or an HTTP forward proxy).

The decisions (which proxy, the CONNECT and SOCKS5 exchanges) are sans-IO in
``_core``; this module only moves their bytes, within the connect limit.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from ..._backends import AsyncClock, AsyncNetwork, AsyncShield, AsyncStream
from ..._core.pool import Origin
from ..._core.proxies import Proxy
from ..._core.socks import Socks5Handshake
from ..._core.tunnel import TunnelResponse, connect_request
from ..._exceptions import ConnectTimeout, ProxyError, ReadTimeout
from ..._tls import client_ssl_context


@dataclass(frozen=True)
class Route:
    """How a pool reaches its origins: at most one of ``proxy`` and ``uds``."""

    proxy: Proxy | None = None
    uds: str | None = None
    proxy_tls: ssl.SSLContext | None = None  # for an https:// proxy (the client's verify)

    @property
    def forwards(self) -> bool:
        """Plain-http requests go to an HTTP proxy in absolute form (no tunnel)."""
        return self.proxy is not None and not self.proxy.is_socks

    def pool_origin(self, origin: Origin) -> Origin:
        """The key a connection for ``origin`` is pooled under: a forwarding proxy's
        connections carry every plain-http origin, so they are keyed by the proxy."""
        if self.proxy is not None and origin[0] == "http" and self.forwards:
            return self.proxy.origin
        return origin


class _Limit:
    """What is left of one connect limit, across the steps of a connection."""

    __slots__ = ("_end",)

    def __init__(self, seconds: float | None) -> None:
        self._end = None if seconds is None else AsyncClock.now() + seconds

    def left(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - AsyncClock.now())


async def open_stream(
    network: AsyncNetwork,
    route: Route,
    origin: Origin,
    tls: ssl.SSLContext | None,
    limit: float | None,
) -> AsyncStream:
    """A stream that carries HTTP to ``origin`` (TLS done for https origins)."""
    scheme, host, port = origin
    left = _Limit(limit)
    proxy = route.proxy
    if route.uds is not None:
        stream = await network.connect_unix(route.uds, left.left())
    elif proxy is None:
        stream = await network.connect_tcp(host, port, left.left())
    else:
        if proxy.scheme == "https" and scheme == "https":
            raise ProxyError(
                f"TLS to {host} inside a TLS connection to the proxy is not supported: use"
                " an http:// proxy URL (the CONNECT tunnel is encrypted end to end anyway)"
            )
        stream = await network.connect_tcp(proxy.host, proxy.port, left.left())
        try:
            if proxy.scheme == "https":
                context = route.proxy_tls or client_ssl_context(True, ("http/1.1",))
                stream = await stream.start_tls(
                    context, server_hostname=proxy.host, server_side=False, timeout=left.left()
                )
            if proxy.is_socks:
                await _socks5(stream, proxy, host, port, left)
            elif scheme == "https":
                await _tunnel(stream, proxy, host, port, left)
            else:
                return stream  # forward proxy: requests go in absolute form
        except BaseException:
            with AsyncShield(1.0):
                await stream.aclose()
            raise
    if scheme == "https":
        assert tls is not None
        stream = await stream.start_tls(
            tls, server_hostname=host, server_side=False, timeout=left.left()
        )
    return stream


async def _receive(stream: AsyncStream, left: _Limit, what: str) -> bytes:
    try:
        return await stream.receive(65536, left.left())
    except ReadTimeout:
        raise ConnectTimeout(f"the proxy did not answer {what} in time") from None


async def _tunnel(stream: AsyncStream, proxy: Proxy, host: str, port: int, left: _Limit) -> None:
    await stream.send_all(connect_request(host, port, proxy.request_fields()), left.left())
    answer = TunnelResponse()
    while (rest := answer.feed(await _receive(stream, left, "CONNECT"))) is None:
        pass
    answer.check(f"{host}:{port}")
    if rest:
        raise ProxyError("the proxy sent bytes into the tunnel before we spoke")


async def _socks5(stream: AsyncStream, proxy: Proxy, host: str, port: int, left: _Limit) -> None:
    handshake = Socks5Handshake(host, port, proxy.auth)
    while not handshake.done:
        await stream.send_all(handshake.data_to_send(), left.left())
        handshake.receive(await _receive(stream, left, "the SOCKS5 handshake"))
