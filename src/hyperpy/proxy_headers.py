"""Apply what a reverse proxy says about the original request, when the proxy is trusted.

Behind a reverse proxy, a handler sees the proxy as its peer and the proxy's
scheme, host and port in the URL. ``ProxyHeaders`` wraps the handler and, only
when the direct peer is a trusted proxy, rewrites each request from the RFC 7239
``Forwarded`` header or from ``X-Forwarded-For``/``-Proto``/``-Host``/``-Port``::

    server = hyperpy.AsyncServer(ProxyHeaders(app, trusted="10.0.0.0/8"))

What a request from an untrusted peer says is never applied, so any client may
send these headers without effect. The trusted proxies must set (or strip) the
single-valued ones (``X-Forwarded-Proto``, ``-Host``, ``-Port``): nothing else
tells a client's value from a proxy's.

Decisions:

* The client comes from the list a chain of proxies appends to (``Forwarded``
  elements, or ``X-Forwarded-For`` entries): walking it from the right, entries
  naming a trusted proxy are skipped and the first other one is taken; if every
  entry is trusted, the leftmost. Entries a client prepends are never reached.
* With a ``Forwarded`` header, the element so chosen gives the client (``for``),
  scheme (``proto``) and host (``host``); an item that element does not mention
  is taken from ``X-Forwarded-*``. A value given but invalid leaves its item as
  it was.
* ``for=unknown`` makes ``request.client`` None (the proxy did not know the
  client); an obfuscated identifier (``for=_hidden``) becomes ``("_hidden", 0)``,
  as RFC 7239 §6.3 lets a proxy keep one stable per client. The port is 0 unless
  given.
* ``X-Forwarded-Proto``, ``-Host`` and ``-Port`` are used when they hold one
  value, or as many values as ``X-Forwarded-For`` (then the one matching the
  chosen client); other lists are ambiguous and ignored.
* A changed scheme keeps an explicit port and moves a default one (80 <-> 443);
  a forwarded host without a port means the scheme's default port, or
  ``X-Forwarded-Port``. When the host or port changes, so does the ``Host`` header.
* A ``Forwarded`` field that cannot be parsed, or an element with a malformed
  ``for``, met while walking the elements, leaves the whole request as it came,
  ``X-Forwarded-*`` included: an unclosed quote can swallow the element a
  trusted proxy appended after it, and falling back would then apply whatever
  the client sent. A malformed ``X-Forwarded-For`` entry, when chosen, leaves
  the client as it was. Nothing malformed ever raises.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, Union, overload

from ._exceptions import InvalidURL
from ._models import Headers, Request, Response
from ._urlparse import parse_url

__all__ = ["ProxyHeaders"]

_IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
_IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}

# The longest IP address text, scope id aside; anything longer is no address (and
# bounding it keeps header text out of the cache below).
_MAX_IP_TEXT = 64
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?\Z")
# A ``name=value`` pair of a Forwarded element (RFC 7239 §4). A token value may
# also hold ":[]", which quoting is required for but proxies often leave bare.
_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
_PAIR = re.compile(
    rf"([{_TCHAR}]+)=(?:([{_TCHAR}:\[\]]+)"
    r'|"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)")[ \t]*'
)
_QUOTED_PAIR = re.compile(r"\\(.)")


class _Node(NamedTuple):
    """A ``for=`` value or ``X-Forwarded-For`` entry: what ``request.client`` becomes,
    and its IP address (None for ``unknown`` and obfuscated identifiers)."""

    client: tuple[str, int] | None
    ip: _IPAddress | None


class _Element(NamedTuple):
    """One ``Forwarded`` element: its parameters (lowercase names, unquoted values)
    and its parsed ``for`` (None when the element has none)."""

    params: dict[str, str]
    node: _Node | None


@functools.lru_cache(maxsize=1024)
def _ip(text: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _parse_ip(text: str) -> _IPAddress | None:
    return _ip(text) if len(text) <= _MAX_IP_TEXT else None


class _Trust:
    """The ``trusted`` option, parsed once: which peers and entries are trusted proxies."""

    __slots__ = ("all", "networks", "unix")

    def __init__(self, trusted: str | Iterable[str]) -> None:
        items = [trusted] if isinstance(trusted, str) else list(trusted)
        self.all = False
        self.unix = False
        self.networks: list[_IPNetwork] = []
        for item in items:
            for entry in item.split(","):
                entry = entry.strip()
                if not entry:
                    continue
                if entry == "*":
                    self.all = True
                elif entry.lower() == "unix":
                    self.unix = True
                else:
                    try:
                        self.networks.append(ipaddress.ip_network(entry, strict=False))
                    except ValueError:
                        raise ValueError(
                            f"trusted: {entry!r} is not an IP address or network, '*' or 'unix'"
                        ) from None

    def peer(self, client: tuple[str, int] | None) -> bool:
        """Whether the direct peer is trusted; one without an IP address (None, "" or
        a socket path) came over a Unix domain socket."""
        if self.all:
            return True
        ip = _parse_ip(client[0]) if client is not None else None
        if ip is None:
            return self.unix
        return self.address(ip)

    def address(self, ip: _IPAddress) -> bool:
        """Whether ``ip`` is in a trusted network."""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            # A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d.
            mapped = ip.ipv4_mapped
            if any(mapped in network for network in self.networks):
                return True
        return any(ip in network for network in self.networks)

    def node(self, node: _Node | None) -> bool:
        """Whether an entry names a trusted proxy (a malformed one never does)."""
        if node is None:
            return False
        return self.all or (node.ip is not None and self.address(node.ip))

    def __repr__(self) -> str:
        entries = ["*"] if self.all else []
        entries += ["unix"] if self.unix else []
        entries += [str(network) for network in self.networks]
        return repr(",".join(entries))


def _parse_node(text: str) -> _Node | None:
    """An IP address with an optional port ("1.2.3.4:80", "[::1]:80", bare "::1"),
    ``unknown`` or an obfuscated identifier, with an optional port; None if malformed."""
    text = text.strip()
    port_text: str | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        name, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return None
            port_text = rest[1:]
        ip = _parse_ip(name)
        if not isinstance(ip, ipaddress.IPv6Address):
            return None
    elif text.count(":") > 1:  # a bare IPv6 address, as X-Forwarded-For writes it
        ip = _parse_ip(text)
        if ip is None:
            return None
    else:
        name, colon, rest = text.partition(":")
        if colon:
            port_text = rest
        if name.lower() == "unknown":
            return _Node(None, None) if _port(port_text) is not None else None
        if _OBFUSCATED.match(name):
            port = _port(port_text)
            return _Node((name, port), None) if port is not None else None
        ip = _parse_ip(name)
        if not isinstance(ip, ipaddress.IPv4Address):
            return None
    port = _port(port_text)
    if port is None:
        return None
    return _Node((ip.compressed, port), ip)


def _port(text: str | None) -> int | None:
    """A node's port: 0 when absent or obfuscated, None if malformed."""
    if text is None or _OBFUSCATED.match(text):
        return 0
    return _valid_port(text)


def _valid_port(text: str) -> int | None:
    """A decimal port, 1 to 65535; None otherwise."""
    return int(text) if _PORT.match(text) and 0 < int(text) <= 65535 else None


def _parse_forwarded(field: str) -> list[_Element | None] | None:
    """The elements of one ``Forwarded`` field; None if it cannot be parsed. An
    element whose ``for`` is malformed is None in the list."""
    elements: list[_Element | None] = []
    params: dict[str, str] = {}
    pos, end = 0, len(field)

    def close() -> None:
        if params:
            node = _parse_node(params["for"]) if "for" in params else None
            bad = "for" in params and node is None
            elements.append(None if bad else _Element(dict(params), node))
            params.clear()

    while True:
        while pos < end and field[pos] in " \t":
            pos += 1
        if pos == end:
            break
        if field[pos] == ",":
            close()  # empty elements (", ,") are allowed and skipped, as list rules say
            pos += 1
            continue
        if field[pos] == ";":
            pos += 1
            continue
        match = _PAIR.match(field, pos)
        if match is None:
            return None
        name = match[1].lower()
        value = match[2] if match[2] is not None else _QUOTED_PAIR.sub(r"\1", match[3])
        if name in params:
            return None  # RFC 7239 §4: a parameter occurs at most once per element
        params[name] = value
        pos = match.end()
        if pos < end and field[pos] not in ",;":
            return None
    close()
    return elements


def _list(headers: Headers, name: str) -> list[str]:
    """The comma-separated entries of every ``name`` field, empty ones dropped."""
    entries = []
    for field in headers.get_list(name):
        entries += [entry.strip() for entry in field.split(",") if entry.strip()]
    return entries


def _aligned(entries: list[str], index: int | None, count: int) -> str | None:
    """The single entry, or the one at ``index`` of a list as long as X-Forwarded-For."""
    if len(entries) == 1:
        return entries[0]
    if index is not None and len(entries) == count:
        return entries[index]
    return None


def _host(text: str) -> tuple[str, int | None] | None:
    """A ``host[:port]`` value (the Host header's syntax), normalised; None if invalid."""
    if not _HOST.match(text):
        return None
    try:
        parts = parse_url(f"http://{text}/")
    except InvalidURL:
        return None
    if parts.port == 0:
        return None
    return parts.host, parts.port


class _Unreadable(Exception):
    """A Forwarded field on the walk cannot be parsed: apply nothing."""


class ProxyHeaders:
    """Wraps a handler to apply ``Forwarded`` / ``X-Forwarded-*`` sent by trusted proxies.

    ``ProxyHeaders(app)`` is a sync handler for a sync ``app`` (``Server``) and
    an async one for an ``async def`` app or an object with an async
    ``__call__`` (``AsyncServer``). ``trusted`` lists the proxies: IP addresses
    and networks ("10.0.0.0/8", "::1"), comma-separated or as an iterable, "*"
    for every peer, and "unix" for peers on a Unix domain socket; an entry that
    is none of these raises ValueError. ``use_forwarded=False`` ignores the
    ``Forwarded`` header. An app's ``lifespan`` attribute is carried over.
    """

    app: Callable[[Request], Any]
    use_forwarded: bool
    lifespan: Any  # only set when the wrapped app has one
    _trust: _Trust

    @overload
    def __new__(
        cls,
        app: Callable[[Request], Awaitable[Response]],
        *,
        trusted: str | Iterable[str] = ...,
        use_forwarded: bool = ...,
    ) -> _AsyncProxyHeaders: ...

    @overload
    def __new__(
        cls,
        app: Callable[[Request], Response],
        *,
        trusted: str | Iterable[str] = ...,
        use_forwarded: bool = ...,
    ) -> _SyncProxyHeaders: ...

    def __new__(
        cls,
        app: Callable[[Request], Any],
        *,
        trusted: str | Iterable[str] = "127.0.0.1",
        use_forwarded: bool = True,
    ) -> ProxyHeaders:
        # Built here rather than in __init__: a type checker then takes the
        # overloads above as the constructor, and so knows which kind it gets.
        kind: type[ProxyHeaders] = _AsyncProxyHeaders if _is_async(app) else _SyncProxyHeaders
        wrapper = object.__new__(kind)
        wrapper.app = app
        wrapper.use_forwarded = use_forwarded
        wrapper._trust = _Trust(trusted)
        if hasattr(app, "lifespan"):
            wrapper.lifespan = app.lifespan
        return wrapper

    def rewrite(self, request: Request) -> None:
        """Apply the forwarded client, scheme, host and port to ``request`` in place,
        if its peer is a trusted proxy."""
        if not self._trust.peer(request.client):
            return
        try:
            element = self._forwarded(request.headers) if self.use_forwarded else None
        except _Unreadable:
            return
        params = element.params if element is not None else {}
        headers = request.headers

        # X-Forwarded-For: the chosen entry, and its index for the other X- lists.
        entries = _list(headers, "x-forwarded-for")
        index: int | None = None
        chosen: _Node | None = None
        for i in range(len(entries) - 1, -1, -1):
            index, chosen = i, _parse_node(entries[i])
            if not self._trust.node(chosen):
                break

        def forwarded_x(name: str) -> str | None:
            return _aligned(_list(headers, name), index, len(entries))

        if element is not None and element.node is not None:
            request.client = element.node.client
        elif chosen is not None:
            request.client = chosen.client

        proto = params["proto"] if "proto" in params else forwarded_x("x-forwarded-proto")
        host_text = params["host"] if "host" in params else forwarded_x("x-forwarded-host")
        port_text = forwarded_x("x-forwarded-port")

        url = request.url
        scheme = url.scheme
        if proto is not None:
            scheme = _SCHEMES.get(proto.lower(), scheme)
        # A default port follows the scheme (80 <-> 443); an explicit one stays.
        host, port = url.host, _DEFAULT_PORTS[scheme] if url.is_default_port else url.port
        moved = False
        given = _host(host_text) if host_text is not None else None
        if given is not None:
            host, moved = given[0], True
            port = given[1] if given[1] is not None else _DEFAULT_PORTS[scheme]
        forwarded_port = _valid_port(port_text) if port_text is not None else None
        if forwarded_port is not None and (given is None or given[1] is None):
            port, moved = forwarded_port, True
        if (scheme, host, port) == url.origin:
            return
        try:
            request.url = url.copy_with(scheme=scheme, host=host, port=port)
        except InvalidURL:
            return
        if moved:
            headers["host"] = request.url.authority

    def _forwarded(self, headers: Headers) -> _Element | None:
        """The chosen ``Forwarded`` element, None without one; raises ``_Unreadable``."""
        fields = headers.get_list("forwarded")
        last: _Element | None = None
        for field in reversed(fields):
            elements = _parse_forwarded(field)
            if elements is None:
                raise _Unreadable
            for element in reversed(elements):
                if element is None:
                    raise _Unreadable  # its for= is malformed: the client is unknown
                last = element
                if not self._trust.node(element.node):
                    return element
        return last

    if TYPE_CHECKING:
        # Every instance is one of the two kinds below; this lets code holding a
        # plain ProxyHeaders (say, from an app typed Any) call it.
        def __call__(self, request: Request) -> Any: ...

    def __repr__(self) -> str:
        return f"<ProxyHeaders {self.app!r} trusted={self._trust!r}>"


class _SyncProxyHeaders(ProxyHeaders):
    """``ProxyHeaders`` around a sync handler."""

    app: Callable[[Request], Response]

    def __call__(self, request: Request) -> Response:
        self.rewrite(request)
        return self.app(request)


class _AsyncProxyHeaders(ProxyHeaders):
    """``ProxyHeaders`` around an async handler."""

    app: Callable[[Request], Awaitable[Response]]

    async def __call__(self, request: Request) -> Response:
        self.rewrite(request)
        return await self.app(request)


def _is_async(app: Any) -> bool:
    return inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(
        getattr(app, "__call__", None)  # noqa: B004 - an object with an async __call__
    )
