"""Building a client request from what the caller passed: URL and base URL,
query parameters, default and own header fields, cookies, and the body (bytes,
text, JSON, a form, or a streamed multipart upload).

Shared by both worlds; nothing here waits. Multipart file parts are read only
when the body is sent.
"""

from __future__ import annotations

from typing import Any

from .._models import URL, ContentTypes, Headers, HeaderTypes, Request
from .._urlparse import encode_query, join_url, merge_query
from .cookies import Cookies, CookieTypes
from .multipart import MultipartBody, RequestData, RequestFiles, encode_form

QueryTypes = Any  # a mapping, a list of pairs, or an already-encoded str (see encode_query)


def build_request(
    method: str,
    url: str | URL,
    *,
    base_url: str | None,
    default_headers: Headers,
    default_params: QueryTypes = None,
    params: QueryTypes = None,
    headers: HeaderTypes = None,
    cookies: CookieTypes = None,
    jar: Cookies | None = None,
    content: ContentTypes = None,
    text: str | None = None,
    json: Any = None,
    data: RequestData | None = None,
    files: RequestFiles | None = None,
) -> Request:
    """A ``Request`` with the client's defaults applied (its own values win)."""
    if isinstance(url, URL):
        parsed = url  # absolute already (a base URL would not change it); str() would
        # drop its credentials
    else:
        parsed = URL(join_url(base_url, url) if base_url is not None else url)
    query = _query(default_params, params) if default_params or params else ""
    if query:
        parsed = parsed.copy_with(query=merge_query(parsed.query, query))
    # The request's own fields replace the client's defaults of the same name.
    raw = default_headers.raw
    if headers:
        own = Headers(headers).raw
        names = {name for name, _ in own}
        raw = [field for field in raw if field[0] not in names] + own
    else:
        names = set()
    if b"host" not in names:
        raw = [(b"host", parsed.authority.encode("ascii")), *raw]
    merged = Headers.from_raw(raw)
    if files:
        body = MultipartBody(data or {}, files)
        merged.setdefault("content-type", body.content_type)
        if body.content_length is not None:
            merged.setdefault("content-length", str(body.content_length))
        content = body
    elif data is not None and content is None:
        if isinstance(data, (bytes, str)):
            raise TypeError("data= is for form fields; pass bytes or text as content=")
        content = encode_form(data)
        merged.setdefault("content-type", "application/x-www-form-urlencoded")
    request = Request(method, parsed, headers=merged, content=content, text=text, json=json)
    if cookies:
        # Per-request cookies beside the jar's, for this request only.
        own_jar = Cookies(jar) if jar is not None else Cookies()
        own_jar.update(Cookies(cookies))
        own_jar.set_cookie_header(request)
    return request


def _query(default: QueryTypes, own: QueryTypes) -> str:
    parts = [encode_query(p) for p in (default, own) if p]
    return "&".join(part for part in parts if part)


def is_replayable(request: Request) -> bool:
    """Whether the body can be sent again: bytes, a stream not yet started, or a
    multipart body (which rewinds its files)."""
    return (
        request._stream is None
        or not request._consumed
        or isinstance(request._stream, MultipartBody)
    )


def rewind(request: Request) -> None:
    """Make a replayable request's body readable again before it is re-sent."""
    if isinstance(request._stream, MultipartBody):
        request._consumed = False
