"""URL, Headers, Request and Response: the values both worlds and both roles share.

A body is either bytes already in memory or a stream. A stream is a sync or an
async iterable of bytes; the sync methods (``read``, ``iter_bytes``, ``close``)
work on the first, the ``a``-prefixed ones (``aread``, ``aiter_bytes``,
``aclose``) on either, so one class serves the blocking and the trio API.
"""

from __future__ import annotations

import codecs
import functools
import json as jsonlib
import re
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from datetime import timedelta
from http import HTTPStatus
from typing import Any, Union

from ._exceptions import HTTPStatusError, InvalidURL, ResponseNotRead, StreamConsumed
from ._urlparse import build_url, parse_url, resolve_reference

__all__ = ["URL", "Headers", "Request", "Response"]

HeaderTypes = Union[
    "Headers",
    Mapping[str, str],
    Mapping[bytes, bytes],
    Sequence[tuple[str, str]],
    Sequence[tuple[bytes, bytes]],
    None,
]
ContentTypes = Union[bytes, str, Iterable[bytes], AsyncIterable[bytes], None]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _b(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


class Headers(MutableMapping[str, str]):
    """Case-insensitive, order-keeping, multi-valued HTTP header fields.

    ``headers[name]`` joins repeated fields with ", "; ``get_list`` returns them
    apart. Names are stored lowercase, values as bytes (``raw``).
    """

    __slots__ = ("_list",)

    def __init__(self, headers: HeaderTypes = None) -> None:
        self._list: list[tuple[bytes, bytes]] = []
        if headers is None:
            return
        if isinstance(headers, Headers):
            self._list = list(headers._list)
            return
        items: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in items:
            self._list.append((_b(name).lower(), _b(value)))

    @classmethod
    def from_raw(cls, raw: list[tuple[bytes, bytes]]) -> Headers:
        """Wrap a list of (lowercase name, value) byte pairs without copying it."""
        headers = cls.__new__(cls)
        headers._list = raw
        return headers

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The fields as (lowercase name, value) byte pairs, in order."""
        return self._list

    def get_list(self, key: str) -> list[str]:
        """Every value of the field ``key``, in order."""
        k = _b(key).lower()
        return [v.decode("latin-1") for n, v in self._list if n == k]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair, repeated names included."""
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self._list]

    def add(self, key: str, value: str) -> None:
        """Append a field, keeping any with the same name."""
        self._list.append((_b(key).lower(), _b(value)))

    def __getitem__(self, key: str) -> str:
        k = _b(key).lower()
        values = [v for n, v in self._list if n == k]
        if not values:
            raise KeyError(key)
        return b", ".join(values).decode("latin-1")

    def __setitem__(self, key: str, value: str) -> None:
        k = _b(key).lower()
        self._list = [(n, v) for n, v in self._list if n != k]
        self._list.append((k, _b(value)))

    def __delitem__(self, key: str) -> None:
        k = _b(key).lower()
        kept = [(n, v) for n, v in self._list if n != k]
        if len(kept) == len(self._list):
            raise KeyError(key)
        self._list = kept

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (str, bytes)):
            return False
        k = _b(key).lower()
        return any(n == k for n, _ in self._list)

    def __iter__(self) -> Iterator[str]:
        seen: dict[bytes, None] = dict.fromkeys(n for n, _ in self._list)
        return (n.decode("latin-1") for n in seen)

    def __len__(self) -> int:
        return len({n for n, _ in self._list})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            try:
                other = Headers(other)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return False
        return sorted(self._list) == sorted(other._list)

    def __repr__(self) -> str:
        return f"Headers({self.multi_items()!r})"


# A client sends to the same few URLs again and again: parse each once. Long URLs
# (and so most that carry a long query) are parsed every time, bounding the memory.
_CACHED_URL_LENGTH = 256
_parse_cached = functools.lru_cache(maxsize=1024)(parse_url)


class URL:
    """An absolute http(s) URL, parsed and normalised once into the parts a request needs.

    ``port`` is always set (80 or 443 when the URL has none). ``username`` and
    ``password`` are percent-decoded and "" when absent; ``query`` and
    ``fragment`` are "" when absent. ``str()`` gives what may be sent or
    logged: no credentials, no fragment. Equality and hashing compare every
    part, credentials and fragment included; a str compares as the URL it parses to.
    """

    __slots__ = (
        "fragment",
        "host",
        "password",
        "path",
        "port",
        "query",
        "scheme",
        "target",
        "username",
    )
    scheme: str
    username: str
    password: str
    host: str
    port: int
    path: str
    query: str
    fragment: str
    target: str

    def __init__(self, url: str | URL) -> None:
        if isinstance(url, URL):
            self.scheme, self.username, self.password = url.scheme, url.username, url.password
            self.host, self.port, self.path = url.host, url.port, url.path
            self.query, self.fragment, self.target = url.query, url.fragment, url.target
            return
        parts = _parse_cached(url) if len(url) <= _CACHED_URL_LENGTH else parse_url(url)
        self.scheme = parts.scheme
        self.username = parts.username or ""
        self.password = parts.password or ""
        self.host = parts.host
        self.port = parts.port if parts.port is not None else _DEFAULT_PORTS[parts.scheme]
        self.path = parts.path
        self.query = parts.query
        self.fragment = parts.fragment
        self.target = f"{parts.path}?{parts.query}" if parts.query else parts.path

    @property
    def origin(self) -> tuple[str, str, int]:
        """(scheme, host, port): what a pooled connection is keyed by."""
        return (self.scheme, self.host, self.port)

    @property
    def is_default_port(self) -> bool:
        """Whether the port is the scheme's default (80 for http, 443 for https)."""
        return self.port == _DEFAULT_PORTS[self.scheme]

    @property
    def authority(self) -> str:
        """ASCII host and, when not the default, port, as for ``Host`` or ``:authority``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"

    def copy_with(
        self,
        *,
        scheme: str | None = None,
        username: str | None = None,
        password: str | None = None,
        host: str | None = None,
        port: int | None = None,
        path: str | None = None,
        query: str | None = None,
        fragment: str | None = None,
    ) -> URL:
        """A new URL with the given parts replaced (None keeps a part; "" clears a str one).

        Parts are given decoded (credentials) or as text to encode where required
        (path, query, fragment); the result is parsed and checked like any URL.
        """
        return URL(
            build_url(
                self.scheme if scheme is None else scheme,
                self.host if host is None else host,
                self._explicit_port() if port is None else port,
                self.path if path is None else path,
                self.query if query is None else query,
                self.fragment if fragment is None else fragment,
                username=self.username if username is None else username,
                password=self.password if password is None else password,
            )
        )

    def join(self, relative: str) -> URL:
        """Resolve ``relative`` (e.g. a redirect's Location) against this URL (RFC 3986 §5.2).

        ``relative`` may be a path, ``?query``, ``#fragment``, scheme-relative
        (``//host/x``) or absolute. Credentials carry over only while the
        authority does. Without a fragment of its own the result keeps this
        URL's fragment (RFC 7231 §7.1.2).
        """
        base = build_url(
            self.scheme,
            self.host,
            self._explicit_port(),
            self.path,
            self.query,
            username=self.username,
            password=self.password,
        )
        resolved = resolve_reference(base, relative)
        if self.fragment and "#" not in relative:
            resolved = f"{resolved}#{self.fragment}"
        return URL(resolved)

    def _explicit_port(self) -> int | None:
        return None if self.port == _DEFAULT_PORTS[self.scheme] else self.port

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"

    def __repr__(self) -> str:
        return f"URL({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = URL(other)
            except InvalidURL:
                return False
        if not isinstance(other, URL):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[str, str, str, str, int, str, str]:
        return (
            self.scheme,
            self.username,
            self.password,
            self.host,
            self.port,
            self.target,
            self.fragment,
        )


class _Body:
    """Body handling common to requests and responses."""

    headers: Headers
    _content: bytes | None
    _stream: Iterable[bytes] | AsyncIterable[bytes] | None
    _consumed: bool
    trailers: Headers

    def _init_body(
        self,
        content: ContentTypes,
        text: str | None,
        json: Any,
        stream: Iterable[bytes] | AsyncIterable[bytes] | None,
    ) -> None:
        self._stream = stream
        self._consumed = False
        self._content = None
        if json is not None:
            content = jsonlib.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
            self.headers.setdefault("content-type", "application/json")
        elif text is not None:
            content = text.encode()
            self.headers.setdefault("content-type", "text/plain; charset=utf-8")
        if isinstance(content, str):
            content = content.encode()
        if isinstance(content, bytes):
            self._content = content
        elif content is not None:
            self._stream = content

    @property
    def is_streaming(self) -> bool:
        """True while the body is a stream not yet read into memory."""
        return self._content is None and self._stream is not None

    @property
    def content(self) -> bytes:
        """The whole body; a streamed body must be read first (``read``/``aread``)."""
        if self._content is None:
            if self._stream is None:
                return b""
            raise ResponseNotRead("the body is a stream: call read() or aread() first")
        return self._content

    def _claim_stream(self) -> Iterable[bytes] | AsyncIterable[bytes]:
        if self._consumed:
            raise StreamConsumed("the body stream was already read")
        self._consumed = True
        assert self._stream is not None
        return self._stream

    def iter_bytes(self) -> Iterator[bytes]:
        """Yield the body in chunks (sync world)."""
        if self._content is not None or self._stream is None:
            if self._content:
                yield self._content
            return
        stream = self._claim_stream()
        if not isinstance(stream, Iterable):
            raise TypeError("this body is an async stream: use aiter_bytes()")
        try:
            for chunk in stream:
                if chunk:
                    yield chunk
        finally:
            self.close()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Yield the body in chunks (trio world); a sync iterable is accepted too."""
        if self._content is not None or self._stream is None:
            if self._content:
                yield self._content
            return
        stream = self._claim_stream()
        try:
            if isinstance(stream, AsyncIterable):
                async for chunk in stream:
                    if chunk:
                        yield chunk
            else:
                for chunk in stream:
                    if chunk:
                        yield chunk
        finally:
            await self.aclose()

    def read(self) -> bytes:
        """Read the whole body into memory and return it (sync world)."""
        if self._content is None:
            self._content = b"".join(self.iter_bytes())
        return self._content

    async def aread(self) -> bytes:
        """Read the whole body into memory and return it (trio world)."""
        if self._content is None:
            self._content = b"".join([chunk async for chunk in self.aiter_bytes()])
        return self._content

    def close(self) -> None:
        """Release the body stream (and its connection) without reading the rest."""
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()

    async def aclose(self) -> None:
        """Release the body stream (and its connection) without reading the rest."""
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()
        else:
            self.close()


class Request(_Body):
    """An HTTP request: built by a client caller, or handed to a server handler.

    On the server, ``http_version`` says which protocol it came over ("1.0",
    "1.1" or "2"), ``client`` is the peer address and ``scheme`` "http" or "https".
    """

    def __init__(
        self,
        method: str,
        url: str | URL,
        *,
        headers: HeaderTypes = None,
        content: ContentTypes = None,
        text: str | None = None,
        json: Any = None,
        stream: Iterable[bytes] | AsyncIterable[bytes] | None = None,
        http_version: str = "1.1",
        client: tuple[str, int] | None = None,
        trailers: HeaderTypes = None,
    ) -> None:
        self.method = method.upper()
        self.url = URL(url)
        self.headers = Headers(headers)
        self.http_version = http_version
        self.client = client
        # On the server: the offer to switch protocols, when the request asks for
        # a WebSocket (``request.upgrade.accept_websocket()``); else None.
        self.upgrade: Any = None
        self.trailers = Headers(trailers)
        self._init_body(content, text, json, stream)

    @property
    def scheme(self) -> str:
        return self.url.scheme

    @property
    def path(self) -> str:
        return self.url.path

    @property
    def query(self) -> str:
        return self.url.query

    @property
    def target(self) -> str:
        return self.url.target

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


class Response(_Body):
    """An HTTP response: returned by a server handler, or received by a client.

    ``content``/``text``/``json`` give an in-memory body; ``content`` may also be
    an (async) iterable of bytes to stream. ``trailers`` are sent after the body
    where the protocol allows (HTTP/2, chunked HTTP/1.1).
    """

    def __init__(
        self,
        status: int = 200,
        *,
        headers: HeaderTypes = None,
        content: ContentTypes = None,
        text: str | None = None,
        json: Any = None,
        stream: Iterable[bytes] | AsyncIterable[bytes] | None = None,
        reason: str | None = None,
        http_version: str = "1.1",
        trailers: HeaderTypes = None,
        request: Request | None = None,
    ) -> None:
        self.status = status
        self.headers = Headers(headers)
        self.reason = reason if reason is not None else _reason(status)
        self.http_version = http_version
        self.trailers = Headers(trailers)
        self.request = request
        # Set by the client: the redirects that led here, the time to the head, and
        # the cookies this response set (a ``hyperpy.Cookies``).
        self.history: list[Response] = []
        self.elapsed = timedelta(0)
        self.cookies: MutableMapping[str, str] = {}
        self._encoding: str | None = None
        self._init_body(content, text, json, stream)

    @property
    def status_code(self) -> int:
        """Alias of ``status``, as in requests and httpx."""
        return self.status

    @property
    def url(self) -> URL | None:
        """The URL this response answered (after redirects: the last one)."""
        return None if self.request is None else self.request.url

    @property
    def is_redirect(self) -> bool:
        """A redirect status (301, 302, 303, 307, 308) with a Location to follow."""
        return self.status in _REDIRECTS and "location" in self.headers

    @property
    def encoding(self) -> str:
        """How ``text`` decodes the body: set explicitly, else the charset named by
        Content-Type, else utf-8 (what JSON and most of the web use)."""
        if self._encoding is not None:
            return self._encoding
        ctype = self.headers.get("content-type", "")
        for param in ctype.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip().strip('"')
                try:
                    codecs.lookup(charset)
                except LookupError:
                    break  # an unknown charset: decode as utf-8, replacing errors
                return charset
        return "utf-8"

    @encoding.setter
    def encoding(self, value: str) -> None:
        codecs.lookup(value)  # LookupError now, not at the first read
        self._encoding = value

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The Link header (RFC 8288) by relation type (or URL when it has no rel)."""
        links: dict[str, dict[str, str]] = {}
        for value in self.headers.get_list("link"):
            for link in _split_links(value):
                key = link.get("rel") or link.get("url", "")
                links[key] = link
        return links

    def iter_text(self) -> Iterator[str]:
        """The body as text, decoded incrementally (sync world)."""
        decoder = codecs.getincrementaldecoder(self.encoding)(errors="replace")
        for chunk in self.iter_bytes():
            text = decoder.decode(chunk)
            if text:
                yield text
        text = decoder.decode(b"", final=True)
        if text:
            yield text

    async def aiter_text(self) -> AsyncIterator[str]:
        """The body as text, decoded incrementally (trio world)."""
        decoder = codecs.getincrementaldecoder(self.encoding)(errors="replace")
        async for chunk in self.aiter_bytes():
            text = decoder.decode(chunk)
            if text:
                yield text
        text = decoder.decode(b"", final=True)
        if text:
            yield text

    def iter_lines(self) -> Iterator[str]:
        """The body's lines, without their line ends (sync world)."""
        lines = _LineSplitter()
        for text in self.iter_text():
            yield from lines.feed(text)
        yield from lines.flush()

    async def aiter_lines(self) -> AsyncIterator[str]:
        """The body's lines, without their line ends (trio world)."""
        lines = _LineSplitter()
        async for text in self.aiter_text():
            for line in lines.feed(text):
                yield line
        for line in lines.flush():
            yield line

    @property
    def text(self) -> str:
        """The body decoded with ``encoding`` (undecodable bytes replaced)."""
        return self.content.decode(self.encoding, errors="replace")

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.content, **kwargs)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def raise_for_status(self) -> Response:
        """Raise ``HTTPStatusError`` for a 4xx or 5xx status; return self otherwise."""
        if self.status >= 400:
            where = f" for {self.request.method} {self.request.url}" if self.request else ""
            kind = "client error" if self.status < 500 else "server error"
            raise HTTPStatusError(
                f"{self.status} {self.reason} ({kind}){where}", status=self.status
            )
        return self

    def __repr__(self) -> str:
        return f"<Response [{self.status} {self.reason}]>"


_REASONS = {s.value: s.phrase for s in HTTPStatus}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class _LineSplitter:
    """Splits text into lines across chunk boundaries (\n, \r\n or \r)."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = ""

    def feed(self, text: str) -> list[str]:
        text = self._rest + text
        # A final \r may be the first half of \r\n: keep it for the next chunk.
        keep_cr = text.endswith("\r")
        if keep_cr:
            text = text[:-1]
        lines = text.splitlines(keepends=True)
        self._rest = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        if keep_cr:
            self._rest += "\r"
        return [line.rstrip("\r\n") for line in lines]

    def flush(self) -> list[str]:
        rest, self._rest = self._rest, ""
        return [rest.rstrip("\r\n")] if rest else []


def _split_links(value: str) -> list[dict[str, str]]:
    """``<url>; rel="next"; title=x, <url2>; ...`` as a list of parameter dicts."""
    links = []
    for part in re.split(r",\s*(?=<)", value):
        url, _, params = part.partition(";")
        link = {"url": url.strip().strip("<> '\"")}
        for param in params.split(";"):
            key, sep, val = param.partition("=")
            if sep:
                link[key.strip().lower()] = val.strip().strip("'\"")
        links.append(link)
    return links


def _reason(status: int) -> str:
    return _REASONS.get(status, "")
