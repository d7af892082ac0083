"""HTTP/2 request and response heads: what the pseudo-fields say, and what a
response's HEADERS carry. Plain functions over (name, value) pairs, whatever
engine decoded them."""

from __future__ import annotations

from typing import NamedTuple

from .._exceptions import RemoteProtocolError
from .fields import SERVER_HEADER, http_date

Fields = list[tuple[bytes, bytes]]

_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"host"}
)


def request_headers(
    method: str, scheme: str, authority: str, target: str, headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """Pseudo-headers first, then the fields HTTP/2 allows (no hop-by-hop, no Host)."""
    out = [
        (b":method", method.encode("ascii")),
        (b":scheme", scheme.encode("ascii")),
        (b":authority", authority.encode("idna")),
        (b":path", target.encode("ascii")),
    ]
    for name, value in headers:
        # TE is allowed only as "trailers" (RFC 9113 §8.2.2): any other value made h2
        # refuse the whole request, so it is dropped like the hop-by-hop fields.
        if name in _HOP_BY_HOP or (name == b"te" and value.lower() != b"trailers"):
            continue
        out.append((name, value))
    return out


def response_headers(status: int, headers: Fields, content_length: int | None) -> Fields:
    """A response's HEADERS: ``:status``, the fields HTTP/2 allows, then Date, Server
    and (for an in-memory body) Content-Length unless the handler set them."""
    out = [(b":status", str(status).encode("ascii"))]
    names = set()
    for name, value in headers:
        if name not in _HOP_BY_HOP:
            out.append((name, value))
            names.add(name)
    if b"date" not in names:
        out.append((b"date", http_date()))
    if b"server" not in names:
        out.append((b"server", SERVER_HEADER))
    if content_length is not None and b"content-length" not in names and status not in (204, 304):
        out.append((b"content-length", str(content_length).encode()))
    return out


class RequestHead(NamedTuple):
    """What a request's HEADERS say, pseudo-fields decoded."""

    method: str
    scheme: str | None  # None: not sent (the connection's own scheme applies)
    authority: str  # :authority, else Host, else ""
    path: str
    headers: Fields  # the regular fields


def request_head(headers: Fields) -> RequestHead | None:
    """The request a stream's HEADERS carry, or None if it cannot be served
    (no method, a path that is not origin-form, or CONNECT): the stream is reset."""
    pseudo, fields = split_pseudo(headers)
    method = pseudo.get(b":method", b"").decode("ascii", "replace")
    path = pseudo.get(b":path", b"").decode("ascii", "replace")
    if not method or not path.startswith("/") or method == "CONNECT":
        return None
    authority = pseudo.get(b":authority")
    if authority is None:
        authority = next((value for name, value in fields if name == b"host"), b"")
    scheme = pseudo.get(b":scheme")
    return RequestHead(
        method,
        scheme.decode("ascii", "replace") if scheme is not None else None,
        authority.decode("latin-1"),
        path,
        fields,
    )


def response_status(headers: Fields) -> tuple[int, Fields]:
    """A response's status and regular fields; a missing or invalid ``:status``
    raises RemoteProtocolError."""
    pseudo, fields = split_pseudo(headers)
    try:
        return int(pseudo[b":status"]), fields
    except (KeyError, ValueError):
        raise RemoteProtocolError("response without a valid :status") from None


def split_pseudo(headers: Fields) -> tuple[dict[bytes, bytes], Fields]:
    """Separate pseudo-headers (``:path`` ...) from regular fields."""
    pseudo: dict[bytes, bytes] = {}
    regular: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name[:1] == b":":
            pseudo[name] = value
        else:
            regular.append((name, value))
    return pseudo, regular
