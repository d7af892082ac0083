"""Following redirects: which responses redirect, and the request that follows one.

Decisions only (RFC 9110 §15.4, and browsers' method rewriting); the client
drives the loop and counts against ``max_redirects``.
"""

from __future__ import annotations

from .._exceptions import InvalidURL, RemoteProtocolError
from .._models import URL, Request

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# Fields that only make sense for the body they described.
_BODY_FIELDS = (b"content-length", b"content-type", b"content-encoding", b"transfer-encoding")
# Credentials for one origin must not reach another (the client adds a new Cookie).
_CREDENTIAL_FIELDS = (b"authorization", b"cookie", b"proxy-authorization")


def is_redirect(status: int, headers_location: str | None) -> bool:
    """A response the client should follow: a redirect status with a Location."""
    return status in REDIRECT_STATUSES and bool(headers_location)


def redirect_method(method: str, status: int) -> str:
    """The method of the next request: 303 turns all but HEAD into GET; 301 and 302
    turn POST into GET (what browsers do, RFC 9110 §15.4.2-3); 307/308 keep it."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def same_origin(a: URL, b: URL) -> bool:
    return a.origin == b.origin


def next_request(request: Request, status: int, location: str) -> Request:
    """The request that follows ``request`` after a redirect to ``location``.

    The method is rewritten as browsers do; when it becomes GET the body and its
    fields are dropped. ``Authorization``, ``Cookie`` and ``Proxy-Authorization``
    are dropped when the origin changes, and always the ``Cookie`` field (the
    client's jar supplies the right one for the new URL). A body that was a
    one-shot stream cannot be sent again: the caller checks ``needs_body``.
    """
    try:
        url = request.url.join(location)
    except InvalidURL as exc:
        raise RemoteProtocolError(f"the server redirected to an invalid URL: {exc}") from None
    if url.scheme not in ("http", "https"):  # pragma: no cover - URL rejects other schemes
        raise RemoteProtocolError(f"the server redirected to a {url.scheme!r} URL")
    method = redirect_method(request.method, status)
    # Only a rewrite to GET drops the body: a PUT redirected by 301 stays a PUT, with it.
    keeps_body = method == request.method
    cross_origin = not same_origin(request.url, url)
    fields = []
    for name, value in request.headers.raw:
        if name == b"host":
            continue
        if name == b"cookie" or (cross_origin and name in _CREDENTIAL_FIELDS):
            continue
        if not keeps_body and name in _BODY_FIELDS:
            continue
        fields.append((name, value))
    fields.insert(0, (b"host", url.authority.encode("ascii")))
    follow = Request(method, url, headers=fields)
    if keeps_body:
        follow._content = request._content
        follow._stream = request._stream
        follow.trailers = request.trailers
    return follow
