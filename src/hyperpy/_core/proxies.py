"""Which proxy a request goes through: proxy URLs, the proxy environment variables
and the NO_PROXY rules, as plain values.

Nothing here opens a connection: the client asks ``EnvProxies.select`` (or uses
the ``Proxy`` it was given) and connects itself.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Union
from urllib.parse import unquote, urlsplit

from .._exceptions import InvalidURL

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

DEFAULT_PORTS: Mapping[str, int] = MappingProxyType(
    {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}
)
SOCKS_SCHEMES = frozenset({"socks5", "socks5h"})


@dataclass(frozen=True)
class Proxy:
    """A proxy server: its URL, credentials and extra headers for it.

    ``url`` is ``http://``, ``https://`` (TLS to the proxy itself), ``socks5://``
    or ``socks5h://`` (both let the proxy resolve host names, so no DNS query
    for the target leaves this machine).
    Credentials in the URL's userinfo are percent-decoded into ``auth`` (unless
    ``auth`` is given, which wins) and removed from the stored ``url``, so the
    URL can be logged. ``headers`` are sent to an HTTP proxy with each request
    (or CONNECT), never to the origin::

        proxy = Proxy("http://user:p%40ss@proxy.internal:3128")
        assert proxy.url == "http://proxy.internal:3128"
        assert proxy.auth == ("user", "p@ss")
    """

    url: str
    auth: tuple[str, str] | None = None
    headers: Mapping[str, str] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.url, str):
            raise TypeError(f"proxy URL must be a str, not {type(self.url).__name__}")
        # urlsplit silently drops tabs and newlines: refuse them (and spaces) instead.
        if any(ch <= " " or ch == "\x7f" for ch in self.url):
            raise InvalidURL(f"proxy URL {self.url!r} contains whitespace or control characters")
        try:
            parts = urlsplit(self.url)
            port = parts.port  # validates the digits and the range
        except ValueError as exc:
            raise InvalidURL(f"invalid proxy URL {self.url!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if "://" not in self.url or scheme not in DEFAULT_PORTS:
            raise InvalidURL(
                f"proxy URL {self.url!r} must start with http://, https://, socks5:// or socks5h://"
            )
        host = parts.hostname
        if not host:
            raise InvalidURL(f"proxy URL {self.url!r} has no host")
        if port == 0:
            raise InvalidURL(f"proxy URL {self.url!r} has port 0")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise InvalidURL(f"proxy URL {self.url!r} must not have a path, query or fragment")
        userinfo = parts.netloc.rpartition("@")[0]
        auth = self.auth
        if auth is None and userinfo:
            user, _, password = userinfo.partition(":")
            auth = (unquote(user), unquote(password))
        if auth is not None and not (
            isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(a, str) for a in auth)
        ):
            raise TypeError("proxy auth must be a (username, password) tuple of str")
        headers = self.headers
        if headers is not None:
            for name, value in headers.items():
                if not isinstance(name, str) or not isinstance(value, str):
                    raise TypeError("proxy headers must map str to str")
                if any(ch in "\r\n\0" for ch in name + value) or not name or ":" in name:
                    raise ValueError(f"invalid proxy header {name!r}")
            headers = MappingProxyType(dict(headers))
        hostport = f"[{host}]" if ":" in host else host
        if port is not None:
            hostport = f"{hostport}:{port}"
        object.__setattr__(self, "url", f"{scheme}://{hostport}")
        object.__setattr__(self, "auth", auth)
        object.__setattr__(self, "headers", headers)

    @property
    def scheme(self) -> str:
        """``http``, ``https``, ``socks5`` or ``socks5h`` (lower case)."""
        return self.url.partition("://")[0]

    @property
    def host(self) -> str:
        """The proxy's host name or IP address (an IPv6 address without brackets)."""
        host = urlsplit(self.url).hostname
        assert host is not None  # validated in __post_init__
        return host

    @property
    def port(self) -> int:
        """The URL's port, or the scheme's default (80, 443 or 1080)."""
        port = urlsplit(self.url).port
        return DEFAULT_PORTS[self.scheme] if port is None else port

    @property
    def origin(self) -> tuple[str, str, int]:
        """``(scheme, host, port)``: what identifies a connection to this proxy."""
        return (self.scheme, self.host, self.port)

    @property
    def is_socks(self) -> bool:
        """A SOCKS5 proxy (the credentials go in the SOCKS handshake, not a header)."""
        return self.scheme in SOCKS_SCHEMES

    def authorization(self) -> bytes | None:
        """The ``Proxy-Authorization`` value for ``auth`` (Basic), or None without auth."""
        if self.auth is None:
            return None
        user, password = self.auth
        token = base64.b64encode(f"{user}:{password}".encode())
        return b"Basic " + token

    def request_fields(self) -> list[tuple[bytes, bytes]]:
        """The fields every request to this proxy carries (in absolute form, or a
        CONNECT): its ``headers`` and, with ``auth``, ``Proxy-Authorization``."""
        extra = self.headers or {}
        fields = [(name.lower().encode(), value.encode()) for name, value in extra.items()]
        authorization = self.authorization()
        if authorization is not None:
            fields.append((b"proxy-authorization", authorization))
        return fields

    def __repr__(self) -> str:
        # Never show the password.
        auth = "" if self.auth is None else f", auth=({self.auth[0]!r}, '***')"
        return f"Proxy({self.url!r}{auth})"


ProxyTypes = Union[str, Proxy, None]


def to_proxy(value: ProxyTypes) -> Proxy | None:
    """A ``Proxy`` from a URL or a ``Proxy`` (None stays None)."""
    if value is None or isinstance(value, Proxy):
        return value
    if isinstance(value, str):
        return Proxy(value)
    raise TypeError(f"proxy must be a URL, a Proxy or None, not {type(value).__name__}")


@dataclass(frozen=True)
class _Rule:
    """One NO_PROXY entry: a host name (with its subdomains), an address or a network."""

    name: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def matches(self, host: str, address: IPAddress | None, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address is not None and address in self.network
        assert self.name is not None
        return host == self.name or host.endswith("." + self.name)


def _parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _normalize_host(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".")


def _parse_rule(entry: str) -> _Rule | None:
    """A NO_PROXY entry as a rule, or None for an entry that cannot match anything."""
    entry = entry.lower()
    port: int | None = None
    if entry.startswith("["):
        host, bracket, rest = entry[1:].partition("]")
        if not bracket:
            return None
        if rest:
            if not rest.startswith(":"):
                return None
            port_text = rest[1:]
            if not (port_text.isascii() and port_text.isdigit()):
                return None
            port = int(port_text)
    elif entry.count(":") == 1:
        # host:port (a bare IPv6 address has at least two colons)
        host, _, port_text = entry.partition(":")
        if not (port_text.isascii() and port_text.isdigit()):
            return None
        port = int(port_text)
    else:
        host = entry
    if port is not None and not 0 < port < 65536:
        return None
    if "/" in host:
        try:
            network: IPNetwork = ipaddress.ip_network(host, strict=False)
        except ValueError:
            return None
        return _Rule(network=network, port=port)
    address = _parse_address(host)
    if address is not None:
        return _Rule(network=ipaddress.ip_network(address), port=port)
    # "*.example.com" is a common spelling of ".example.com"; both mean the domain.
    name = host.removeprefix("*").lstrip(".").rstrip(".")
    if not name or "*" in name:
        return None
    return _Rule(name=name, port=port)


@dataclass(frozen=True)
class NoProxy:
    """The hosts that are reached directly, parsed from a NO_PROXY value.

    Entries are separated by commas or whitespace and compared case-insensitively,
    ignoring trailing dots:

    - ``*`` matches every host;
    - a name (``example.com``, ``.example.com`` or ``*.example.com``) matches
      itself and its subdomains;
    - an IP address (``10.1.2.3``, ``::1``) or a CIDR block (``10.0.0.0/8``,
      ``fd00::/8``) matches IP-literal hosts in it; names are not resolved;
    - any entry with a port (``example.com:8080``, ``[::1]:8080``) matches only
      that port.

    Loopback addresses and ``localhost`` are not special: list them to bypass
    the proxy. Entries that cannot match anything are ignored.
    """

    rules: tuple[_Rule, ...] = ()
    match_all: bool = False

    @classmethod
    def parse(cls, value: str) -> NoProxy:
        entries = value.replace(",", " ").split()
        if "*" in entries:
            return cls(match_all=True)
        rules = (_parse_rule(entry) for entry in entries)
        return cls(rules=tuple(rule for rule in rules if rule is not None))

    def matches(self, host: str, port: int) -> bool:
        """Whether a request to ``host:port`` bypasses the proxy."""
        if self.match_all:
            return True
        host = _normalize_host(host)
        address = _parse_address(host)
        return any(rule.matches(host, address, port) for rule in self.rules)


@dataclass(frozen=True)
class EnvProxies:
    """The proxies named by the environment (see ``proxies_from_env``)."""

    http: Proxy | None = None
    https: Proxy | None = None
    all: Proxy | None = None
    no_proxy: NoProxy = NoProxy()

    def select(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for a request to ``scheme://host:port``, or None to go direct.

        ``http`` (and ``ws``) requests use HTTP_PROXY, ``https`` (and ``wss``)
        HTTPS_PROXY, falling back to ALL_PROXY; NO_PROXY overrides them all.
        """
        scheme = scheme.lower()
        if scheme in ("http", "ws"):
            proxy = self.http or self.all
        elif scheme in ("https", "wss"):
            proxy = self.https or self.all
        else:
            proxy = self.all
        if proxy is None or self.no_proxy.matches(host, port):
            return None
        return proxy


def _getenv(environ: Mapping[str, str], name: str, *, cgi: bool) -> str | None:
    """The value of ``name`` (lower case first); empty values count as unset."""
    lower = environ.get(name.lower(), "").strip()
    if lower:
        return lower
    if cgi and name == "HTTP_PROXY":
        # In a CGI script HTTP_PROXY is the request's "Proxy:" header (httpoxy):
        # a client could choose our proxy.
        return None
    return environ.get(name, "").strip() or None


def _env_proxy(environ: Mapping[str, str], name: str, *, cgi: bool) -> Proxy | None:
    value = _getenv(environ, name, cgi=cgi)
    if value is None:
        return None
    if "://" not in value:
        value = "http://" + value
    try:
        return Proxy(value)
    except InvalidURL as exc:
        raise InvalidURL(f"{name}: {exc}") from None


def proxies_from_env(environ: Mapping[str, str]) -> EnvProxies:
    """The proxies of ``environ`` (e.g. ``os.environ``).

    Reads HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY, each in lower or
    upper case; the lower-case variable wins when both are set (as curl does),
    and an empty value counts as unset. Upper-case HTTP_PROXY is ignored when
    REQUEST_METHOD is set, as in a CGI script, where it comes from a request
    header. A proxy without a scheme is an ``http://`` proxy. A malformed proxy
    URL raises ``InvalidURL`` naming the variable rather than going direct.
    """
    cgi = "REQUEST_METHOD" in environ
    return EnvProxies(
        http=_env_proxy(environ, "HTTP_PROXY", cgi=cgi),
        https=_env_proxy(environ, "HTTPS_PROXY", cgi=cgi),
        all=_env_proxy(environ, "ALL_PROXY", cgi=cgi),
        no_proxy=NoProxy.parse(_getenv(environ, "NO_PROXY", cgi=cgi) or ""),
    )
