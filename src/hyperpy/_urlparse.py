"""URL parsing, normalisation and joining for the client (RFC 3986), without IO.

``parse_url`` turns user text into a ``ParsedURL`` whose parts are ready for the
wire: the host is lowercased ASCII (IDNA 2008 applied, IP literals checked), the
path and query are percent-encoded where RFC 3986 requires it and dot-segments
are removed. Anything that cannot be requested raises ``InvalidURL``, and only
that.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Union
from urllib.parse import quote_plus, unquote

import idna

from ._exceptions import InvalidURL

__all__ = [
    "ParsedURL",
    "QueryParams",
    "build_url",
    "encode_query",
    "join_url",
    "merge_query",
    "parse_url",
    "resolve_reference",
]

QueryValue = Union[str, int, float, bool, None]
QueryParams = Union[
    Mapping[str, Union[QueryValue, Sequence[QueryValue]]],
    Sequence[tuple[str, Union[QueryValue, Sequence[QueryValue]]]],
    str,
]

SCHEMES = frozenset({"http", "https"})

_ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGIT = "0123456789"
_HEXDIG = frozenset("0123456789abcdefABCDEF")
_UNRESERVED = _ALPHA + _DIGIT + "-._~"
_SUB_DELIMS = "!$&'()*+,;="
# What each component may hold literally; "%" is in every set because a valid
# escape stays as it is (one not followed by two hex digits is encoded).
_PATH_SAFE = frozenset(_UNRESERVED + _SUB_DELIMS + ":@/%")
_QUERY_SAFE = frozenset(_UNRESERVED + _SUB_DELIMS + ":@/?%")
_USERNAME_SAFE = frozenset(_UNRESERVED + _SUB_DELIMS + "%")
_PASSWORD_SAFE = frozenset(_UNRESERVED + _SUB_DELIMS + ":%")
_SCHEME_CHARS = frozenset(_ALPHA + _DIGIT + "+-.")
# Hostnames as DNS takes them; "_" is not LDH but appears in real names.
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_MAX_HOST = 253
_MAX_LABEL = 63
_MAX_REPORTED = 200


class ParsedURL(NamedTuple):
    """The normalised parts of an absolute http(s) URL.

    ``username`` and ``password`` are percent-decoded, None when absent.
    ``port`` is None unless given. ``path`` always starts with "/"; ``query``
    and ``fragment`` are "" when absent (so ``http://h/?`` equals ``http://h/``).
    """

    scheme: str
    username: str | None
    password: str | None
    host: str
    port: int | None
    path: str
    query: str
    fragment: str


def parse_url(text: str) -> ParsedURL:
    """Parse and normalise an absolute http(s) URL; raise ``InvalidURL`` if it is not one."""
    if not isinstance(text, str):
        raise TypeError(f"a URL must be a str, not {type(text).__name__}")
    # Control characters (tab, CR, LF, NUL, DEL...) are refused anywhere: they are
    # how headers get injected. A space is refused at the ends and in the
    # authority, and percent-encoded in the path, query and fragment.
    if text.isascii():
        # For ASCII, isprintable() is False exactly for C0 controls and DEL.
        if not text.isprintable():
            raise _invalid(text, "control character or whitespace in URL")
    else:
        if _CONTROL.search(text):
            raise _invalid(text, "control character or whitespace in URL")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _invalid(text, "not valid Unicode (lone surrogate)")
    if text[:1] == " " or text[-1:] == " ":
        raise _invalid(text, "leading or trailing whitespace in URL")
    scheme, authority, path, query, fragment = _split(text)
    if scheme is None:
        raise _invalid(text, "missing scheme (expected http:// or https://)")
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise _invalid(text, f"unsupported scheme {scheme!r}")
    if not authority:
        raise _invalid(text, "missing host")
    username, password, host, port = _parse_authority(authority, text)
    path = _quote(path, _PATH_SAFE) if path else "/"
    if "/." in path:
        path = _remove_dot_segments(path)
    return ParsedURL(
        scheme,
        username,
        password,
        host,
        port,
        path,
        _quote(query, _QUERY_SAFE) if query else "",
        _quote(fragment, _QUERY_SAFE) if fragment else "",
    )


def build_url(
    scheme: str,
    host: str,
    port: int | None = None,
    path: str = "/",
    query: str = "",
    fragment: str = "",
    username: str | None = None,
    password: str | None = None,
) -> str:
    """Compose URL text from decoded userinfo and (possibly unencoded) other parts.

    Each part is percent-encoded so that it cannot spill into the next (a "?"
    in ``path`` becomes ``%3F``). The result is not validated: parse it.
    """
    userinfo = ""
    if username or password:
        userinfo = _quote(username or "", _USERNAME_SAFE, escapes=False)
        if password:
            userinfo += ":" + _quote(password, _PASSWORD_SAFE, escapes=False)
        userinfo += "@"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    netloc = f"{userinfo}{host}" if port is None else f"{userinfo}{host}:{port}"
    if not path.startswith("/"):
        path = "/" + path
    text = f"{scheme}://{netloc}{_quote(path, _PATH_SAFE)}"
    if query:
        text += "?" + _quote(query, _QUERY_SAFE)
    if fragment:
        text += "#" + _quote(fragment, _QUERY_SAFE)
    return text


def resolve_reference(base: str, reference: str) -> str:
    """Resolve ``reference`` against the absolute ``base`` (RFC 3986 §5.2.2).

    Works on text and does not validate: ``parse_url`` checks and normalises
    the result. The fragment is the reference's, as in the RFC.
    """
    scheme, authority, path, query, fragment = _split(reference)
    if scheme is None:
        b_scheme, b_authority, b_path, b_query, _ = _split(base)
        scheme = b_scheme or ""
        if authority is None:
            authority = b_authority or ""
            if not path:
                path = b_path or "/"
                if query is None:
                    query = b_query
            elif not path.startswith("/"):
                # Merge (§5.2.3): the base path up to its last "/", then the reference.
                path = (b_path or "/").rpartition("/")[0] + "/" + path
            path = _remove_dot_segments(path) if "." in path else path
    text = f"{scheme}:" if authority is None else f"{scheme}://{authority}"
    text += path
    if query is not None:
        text += "?" + query
    if fragment is not None:
        text += "#" + fragment
    return text


def join_url(base: str, url: str) -> str:
    """Put ``url`` under the path prefix of a client's ``base_url``.

    An absolute ``url`` (one with a scheme) is returned unchanged. Anything else,
    even ``//host/x``, is a path (with query and fragment) appended to the base
    path: a relative URL never switches host, so ``"/" + user_input`` stays on
    the base host. The base's own query and fragment are dropped.
    """
    if _split(url)[0] is not None:
        return url
    prefix = base.partition("#")[0].partition("?")[0].rstrip("/")
    return f"{prefix}/{url.lstrip('/')}"


def encode_query(params: QueryParams) -> str:
    """Form-urlencode ``params`` (a mapping, a list of pairs, or a ready query string).

    Values may be str, int, float, bool ("true"/"false") or None (empty), or a
    list or tuple of those for a repeated key. A str is used as given, with only
    the characters a query may not hold percent-encoded.
    """
    if isinstance(params, str):
        return _quote(params, _QUERY_SAFE)
    items = params.items() if isinstance(params, Mapping) else params
    pairs: list[str] = []
    for key, value in items:
        name = quote_plus(_primitive(key), safe="")
        values = value if isinstance(value, (list, tuple)) else (value,)
        for item in values:
            pairs.append(f"{name}={quote_plus(_primitive(item), safe='')}")
    return "&".join(pairs)


def merge_query(url_query: str, params_query: str) -> str:
    """The query of a URL with the encoded ``params`` appended after it."""
    if not url_query:
        return params_query
    if not params_query:
        return url_query
    separator = "" if url_query.endswith("&") else "&"
    return f"{url_query}{separator}{params_query}"


def _primitive(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return ""
    raise TypeError(f"cannot put a {type(value).__name__} in a query string")


def _invalid(text: str, reason: str) -> InvalidURL:
    return InvalidURL(f"invalid URL {_for_message(text)!r}: {reason}")


def _for_message(text: str) -> str:
    """The URL as an error message may show it: credentials hidden, length bounded."""
    start = text.find("//")
    if start >= 0:
        start += 2
        end = len(text)
        for stop in "/?#":
            found = text.find(stop, start)
            if 0 <= found < end:
                end = found
        at = text.rfind("@", start, end)
        if at >= 0:
            text = f"{text[:start]}***@{text[at + 1 :]}"
    return text if len(text) <= _MAX_REPORTED else text[:_MAX_REPORTED] + "..."


def _split(
    text: str,
) -> tuple[str | None, str | None, str, str | None, str | None]:
    """Scheme, authority, path, query, fragment (None when absent), as RFC 3986 App. B."""
    rest, hash_sign, fragment = text.partition("#")
    rest, question_mark, query = rest.partition("?")
    scheme: str | None = None
    colon = rest.find(":")
    if colon > 0:
        candidate = rest[:colon]
        if candidate.isascii() and candidate[0].isalpha() and _SCHEME_CHARS.issuperset(candidate):
            scheme, rest = candidate, rest[colon + 1 :]
    authority: str | None = None
    if rest.startswith("//"):
        end = rest.find("/", 2)
        if end < 0:
            end = len(rest)
        authority, rest = rest[2:end], rest[end:]
    return (
        scheme,
        authority,
        rest,
        query if question_mark else None,
        fragment if hash_sign else None,
    )


def _parse_authority(authority: str, text: str) -> tuple[str | None, str | None, str, int | None]:
    # A backslash is "/" to browsers: refusing it keeps every parser on the same host.
    if "\\" in authority:
        raise _invalid(text, "backslash in the authority")
    if " " in authority:
        raise _invalid(text, "whitespace in the authority")
    # The last "@" ends the userinfo, as browsers read it.
    userinfo, at, hostport = authority.rpartition("@")
    username = password = None
    if at:
        name, colon, secret = userinfo.partition(":")
        username = unquote(name)
        password = unquote(secret) if colon else None
    try:
        host, port = _host_and_port(hostport)
    except _Invalid as exc:
        raise _invalid(text, str(exc))
    return username, password, host, port


class _Invalid(Exception):
    """Why a host or port is refused (``parse_url`` adds the URL to the message)."""


# A client talks to few hosts, and checking one (IDNA, IP literals) costs more
# than the rest of a parse: remember the valid ones. Refusals are not cached.
@functools.lru_cache(maxsize=512)
def _host_and_port(hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _Invalid("malformed IPv6 address (no closing ']')")
        host = _ipv6(hostport[1:end])
        after = hostport[end + 1 :]
        if after and not after.startswith(":"):
            raise _Invalid("malformed IPv6 address (text after ']')")
        port_text = after[1:]
    else:
        if hostport.count(":") > 1:
            raise _Invalid("malformed host (an IPv6 address must be in [brackets])")
        host, _, port_text = hostport.partition(":")
        if not host:
            raise _Invalid("missing host")
        host = _hostname(host)
    if not port_text:
        return host, None
    if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
        raise _Invalid(f"invalid port {port_text!r}")
    port = int(port_text)
    if port > 65535:
        raise _Invalid(f"invalid port {port} (above 65535)")
    return host, port


def _ipv6(address: str) -> str:
    # A zone id ("%25eth0", RFC 6874) names a local interface: no use to a client.
    if "%" in address:
        raise _Invalid("malformed IPv6 address (zone identifiers are not supported)")
    try:
        return ipaddress.IPv6Address(address).compressed
    except ValueError:
        raise _Invalid(f"malformed IPv6 address {address!r}")


def _hostname(host: str) -> str:
    if not host.isascii():
        if len(host) > 4 * _MAX_HOST:  # bound the IDNA work on absurd input
            raise _Invalid("host is too long")
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        # idna is foreign code fed arbitrary text: whatever it raises means "not a valid name".
        except Exception as exc:
            raise _Invalid(f"invalid IDNA host ({exc})")
    host = host.lower()
    if not _HOST_CHARS.issuperset(host):
        bad = next(char for char in host if char not in _HOST_CHARS)
        raise _Invalid(f"invalid character {bad!r} in host")
    name = host[:-1] if host.endswith(".") else host
    if not name or name.startswith(".") or ".." in name:
        raise _Invalid("empty label in host")
    if len(name) > _MAX_HOST:
        raise _Invalid(f"host is too long ({len(name)} > {_MAX_HOST} characters)")
    labels = name.split(".")
    if len(name) > _MAX_LABEL:
        for label in labels:
            if len(label) > _MAX_LABEL:
                raise _Invalid(f"host label is too long ({len(label)} > {_MAX_LABEL})")
    if "xn--" in name:
        for label in labels:
            if label.startswith("xn--"):
                try:
                    idna.decode(label)
                except Exception as exc:
                    raise _Invalid(f"invalid IDNA host ({exc})")
    last = labels[-1]
    # A numeric last label makes the name an IPv4 address to resolvers (which also
    # take "0x7f.1" or "2130706433"): only the plain dotted quad is accepted, so
    # what is checked here is what is connected to.
    if last.isdigit() or (last.startswith("0x") and _HEXDIG.issuperset(last[2:])):
        if not _is_dotted_quad(labels):
            raise _Invalid(f"invalid IPv4 address {name!r}")
        return name
    return host


def _is_dotted_quad(labels: list[str]) -> bool:
    """Four decimal octets without leading zeros (which some resolvers read as octal)."""
    if len(labels) != 4:
        return False
    for label in labels:
        if not label.isdigit() or len(label) > 3 or int(label) > 255:
            return False
        if label[0] == "0" and len(label) > 1:
            return False
    return True


def _quote(text: str, safe: frozenset[str], *, escapes: bool = True) -> str:
    """Percent-encode what ``safe`` does not allow, keeping valid escapes if ``escapes``."""
    if (
        text.isascii()
        and safe.issuperset(text)
        and ("%" not in text or (escapes and _escapes_valid(text)))
    ):
        return text
    out: list[str] = []
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char == "%" and escapes:
            if text[index + 1 : index + 2] in _HEXDIG and text[index + 2 : index + 3] in _HEXDIG:
                out.append(text[index : index + 3])
                index += 3
                continue
            out.append("%25")
        elif char in safe and char != "%":
            out.append(char)
        else:
            try:
                encoded = char.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidURL("cannot percent-encode a lone surrogate in a URL part")
            out.append("".join(f"%{byte:02X}" for byte in encoded))
        index += 1
    return "".join(out)


def _escapes_valid(text: str) -> bool:
    index = text.find("%")
    while index >= 0:
        pair = text[index + 1 : index + 3]
        if len(pair) < 2 or pair[0] not in _HEXDIG or pair[1] not in _HEXDIG:
            return False
        index = text.find("%", index + 3)
    return True


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for a path that starts with "/"."""
    segments = path.split("/")[1:]
    output: list[str] = []
    for segment in segments:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    # A path ending in "." or ".." names a directory: keep its trailing "/".
    if segments[-1] in (".", "..") and output:
        output.append("")
    return "/" + "/".join(output)
