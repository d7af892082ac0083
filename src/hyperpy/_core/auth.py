"""Request authentication as a sans-IO generator flow that both worlds drive.

An ``Auth`` turns one request into the one or more requests that are actually
sent: it yields a request, is sent the response, and may yield another (to
answer a ``401`` challenge) or return. The trio client and the blocking client
run the same flow, so no scheme here ever waits or does IO itself.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
from base64 import b64encode
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import ClassVar, Union
from urllib.parse import quote

from .._exceptions import ProtocolError
from .._models import Request, Response

__all__ = [
    "Auth",
    "AuthTypes",
    "BasicAuth",
    "DigestAuth",
    "FunctionAuth",
    "auth_from_url",
    "parse_auth_params",
    "parse_challenges",
    "to_auth",
]

AuthTypes = Union[
    "Auth",
    tuple[Union[str, bytes], Union[str, bytes]],
    Callable[[Request], Request],
    None,
]


class Auth:
    """Base class of authentication schemes: a flow of requests and responses.

    ``auth_flow(request)`` is a generator. It yields the request to send (the
    one it was given, usually with a header added); the client sends it and
    ``.send()``s the response back in. The flow then either yields another
    request (say, after a ``401`` challenge), which the client sends in turn,
    or returns, and the last response is what the caller gets. A client drives
    it like this::

        flow = auth.auth_flow(request)
        request = next(flow)
        while True:
            response = send(request)
            if auth.requires_response_body:
                response.read()
            try:
                request = flow.send(response)
            except StopIteration:
                break  # ``response`` is the final one
            response.close()  # superseded: release its connection

    Set ``requires_response_body = True`` on a subclass that looks at the body
    of the responses it is sent. A custom bearer-token scheme that refreshes
    its token once when the server refuses it::

        class BearerAuth(Auth):
            def __init__(self, fetch_token: Callable[[], str]) -> None:
                self.fetch_token = fetch_token
                self.token = fetch_token()

            def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
                request.headers["Authorization"] = f"Bearer {self.token}"
                response = yield request
                if response.status == 401:
                    self.token = self.fetch_token()
                    request.headers["Authorization"] = f"Bearer {self.token}"
                    yield request
    """

    requires_response_body: ClassVar[bool] = False

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Yield the request(s) to send; receive each one's response (default: as is)."""
        yield request


class BasicAuth(Auth):
    """HTTP Basic authentication (RFC 7617): ``Authorization: Basic base64(user:pass)``.

    A ``str`` username or password is encoded as UTF-8, ``bytes`` are sent as
    they are. A username may not contain ":" (the password may).
    """

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        user, secret = _to_bytes(username), _to_bytes(password)
        if b":" in user:
            raise ValueError("a Basic auth username cannot contain ':' (RFC 7617 §2)")
        self._username = username
        self._header = "Basic " + b64encode(user + b":" + secret).decode("ascii")

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        # The password stays out of reprs, so out of logs and tracebacks.
        return f"BasicAuth(username={self._username!r}, password=***)"


class FunctionAuth(Auth):
    """Authentication by a plain callable that takes the request and returns it.

    For a fixed bearer token::

        def bearer(request: Request) -> Request:
            request.headers["Authorization"] = "Bearer my-token"
            return request

        client.get(url, auth=bearer)
    """

    def __init__(self, func: Callable[[Request], Request]) -> None:
        if not callable(func):
            raise TypeError(f"FunctionAuth needs a callable, not {type(func).__name__}")
        self._func = func

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        result = self._func(request)
        if not isinstance(result, Request):
            raise TypeError(
                f"the auth function {self._func!r} must return the Request, "
                f"not {type(result).__name__}"
            )
        yield result

    def __repr__(self) -> str:
        return f"FunctionAuth({self._func!r})"


def to_auth(value: object) -> Auth | None:
    """The ``Auth`` for a client's ``auth=`` argument.

    None stays None; a ``(username, password)`` tuple of str or bytes becomes
    ``BasicAuth``; an ``Auth`` is returned as is; any other callable becomes
    ``FunctionAuth``. Anything else raises ``TypeError``.
    """
    if value is None or isinstance(value, Auth):
        return value
    if isinstance(value, tuple):
        if len(value) == 2 and all(isinstance(part, (str, bytes)) for part in value):
            return BasicAuth(value[0], value[1])
        raise TypeError(
            "an auth tuple must be (username, password), each str or bytes; "
            f"got a {len(value)}-tuple of {', '.join(type(p).__name__ for p in value)}"
        )
    if callable(value):
        return FunctionAuth(value)
    raise TypeError(
        "auth must be None, a (username, password) tuple, an Auth instance or a "
        f"callable taking and returning the Request, not {type(value).__name__}"
    )


def auth_from_url(username: str, password: str) -> BasicAuth | None:
    """``BasicAuth`` for credentials given in a URL (already percent-decoded).

    No username (an empty one) means no credentials: None.
    """
    if not username:
        return None
    return BasicAuth(username, password)


def _to_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


# --- WWW-Authenticate / Authentication-Info parsing (RFC 9110 §11) ------------------

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SEPARATORS = re.compile(r"[ \t,]*")
_SPACES = re.compile(r"[ \t]*")
_EQUALS = re.compile(r"[ \t]*=[ \t]*")
# A token68 stands alone after its scheme: followed by a comma or the end.
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*[ \t]*(?=,|$)")
# Unquoted parameter values: RFC says token, but lenient peers send e.g. "/".
_BARE_VALUE = re.compile(r"[^, \t]*")


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """The unescaped quoted-string at ``text[start] == '"'`` and the index after it.

    An unterminated string runs to the end of the text.
    """
    chars: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        char = text[i]
        if char == '"':
            return "".join(chars), i + 1
        if char == "\\" and i + 1 < n:
            i += 1
            char = text[i]
        chars.append(char)
        i += 1
    return "".join(chars), n


def _read_value(text: str, start: int) -> tuple[str, int]:
    if start < len(text) and text[start] == '"':
        return _read_quoted(text, start)
    match = _BARE_VALUE.match(text, start)
    assert match is not None  # the pattern matches the empty string
    return match.group(), match.end()


def parse_challenges(values: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    """Every challenge in ``WWW-Authenticate`` field values, in order.

    Each is ``(scheme, params)``, parameter names lowercased, values unquoted
    and unescaped. One field may hold several challenges (``Basic realm="a",
    Digest realm="b", nonce="c"``); commas inside quoted strings do not split.
    A token68 (``Negotiate abc==``) is kept under the parameter name "".
    Malformed bits are skipped rather than failing the whole field.
    """
    challenges: list[tuple[str, dict[str, str]]] = []
    for text in values:
        _parse_field(text, challenges, None)
    return challenges


def parse_auth_params(text: str) -> dict[str, str]:
    """The ``name=value`` list of an ``Authentication-Info`` field (RFC 7616 §3.5)."""
    params: dict[str, str] = {}
    _parse_field(text, [], params)
    return params


def _parse_field(
    text: str, challenges: list[tuple[str, dict[str, str]]], params: dict[str, str] | None
) -> None:
    """Append the challenges of ``text``; parameters before any scheme go to ``params``."""
    i, n = 0, len(text)
    while True:
        i = _skip(_SEPARATORS, text, i)
        if i >= n:
            return
        match = _TOKEN.match(text, i)
        if match is None:  # a stray character or quoted string: step over it
            i = _read_quoted(text, i)[1] if text[i] == '"' else i + 1
            continue
        name, i = match.group(), match.end()
        equals = _EQUALS.match(text, i)
        if equals is not None:  # name=value: a parameter of the current challenge
            value, i = _read_value(text, equals.end())
            if params is not None:
                params.setdefault(name.lower(), value)
            continue
        params = {}
        challenges.append((name, params))
        after = _skip(_SPACES, text, i)
        if after > i:
            token68 = _TOKEN68.match(text, after)
            if token68 is not None:
                params[""] = token68.group().rstrip(" \t")
                i = token68.end()


def _skip(pattern: re.Pattern[str], text: str, start: int) -> int:
    match = pattern.match(text, start)
    assert match is not None  # every skip pattern matches the empty string
    return match.end()


# --- Digest (RFC 7616) ----------------------------------------------------------------

# Algorithm names (as compared, uppercased) -> (name as sent, hashlib name).
_ALGORITHMS: dict[str, tuple[str, str]] = {
    "MD5": ("MD5", "md5"),
    "MD5-SESS": ("MD5-sess", "md5"),
    "SHA-256": ("SHA-256", "sha256"),
    "SHA-256-SESS": ("SHA-256-sess", "sha256"),
    "SHA-512-256": ("SHA-512-256", "sha512_256"),
    "SHA-512-256-SESS": ("SHA-512-256-sess", "sha512_256"),
}


def _hash_available(name: str) -> bool:
    try:
        hashlib.new(name, usedforsecurity=False)
    except ValueError:  # e.g. an OpenSSL without SHA-512/256
        return False
    return True


@dataclass(frozen=True)
class _Challenge:
    """A Digest challenge this client can answer."""

    realm: str
    nonce: str
    algorithm: str  # as sent, e.g. "SHA-256-sess"
    hash_name: str  # for hashlib
    qop: str | None  # "auth", or None for RFC 2069 mode
    opaque: str | None
    userhash: bool
    stale: bool

    @property
    def session(self) -> bool:
        return self.algorithm.endswith("-sess")


def _digest_challenge(params: dict[str, str]) -> _Challenge | str:
    """The challenge, or why it cannot be answered."""
    nonce = params.get("nonce")
    if not nonce:
        return "it has no nonce"
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm not in _ALGORITHMS:
        return f"its algorithm {params['algorithm']!r} is not supported"
    sent_name, hash_name = _ALGORITHMS[algorithm]
    if not _hash_available(hash_name):
        return f"its algorithm {sent_name} is not available in this Python's hashlib"
    qop: str | None = None
    if "qop" in params:
        offered = {part.strip().lower() for part in params["qop"].split(",")}
        if "auth" not in offered:
            # auth-int would need the whole body hashed before sending it.
            return f"its qop {params['qop']!r} does not offer 'auth' (auth-int is not supported)"
        qop = "auth"
    elif algorithm.endswith("-SESS"):
        # A -sess A1 needs a cnonce, which RFC 2069 mode (no qop) cannot send.
        return f"its algorithm {sent_name} needs a qop, and none was offered"
    return _Challenge(
        realm=params.get("realm", ""),
        nonce=nonce,
        algorithm=sent_name,
        hash_name=hash_name,
        qop=qop,
        opaque=params.get("opaque"),
        userhash=params.get("userhash", "").lower() == "true",
        stale=params.get("stale", "").lower() == "true",
    )


@dataclass(frozen=True)
class _Session:
    """The challenge answered for an origin, and the nonce count of its nonce."""

    challenge: _Challenge
    counter: Iterator[int]


# Origins remembered at most: a DigestAuth used with more forgets them all.
_MAX_REMEMBERED = 64


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DigestAuth(Auth):
    """HTTP Digest authentication (RFC 7616, and RFC 2069 servers that send no qop).

    The first request goes out without credentials; a ``401`` with a Digest
    challenge is answered once with credentials. The challenge is remembered,
    so later requests to the same origin carry credentials from the start (the
    nonce count ``nc`` going up); if the server then answers ``401`` with
    ``stale=true`` or a new nonce, the request is sent once more with the new
    nonce. A request is never sent more than twice: a second ``401`` (wrong
    credentials) is returned to the caller. A ``nextnonce`` in a response's
    ``Authentication-Info`` is used for the next request.

    Algorithms MD5, SHA-256 and SHA-512-256, each also ``-sess``; qop ``auth``
    (a challenge that offers only ``auth-int``, or only unknown algorithms,
    raises ``ProtocolError``); ``opaque``; and ``userhash`` when the server asks
    for it. ``rspauth`` is not checked.

    The challenge is remembered per origin (scheme, host, port): credentials
    are only ever offered to the origin that asked for them.

    One ``DigestAuth`` may be shared by many threads and tasks without a lock:
    a remembered challenge is an immutable object put in place by a single
    assignment, and each nonce's count is an ``itertools.count`` (taken with
    ``dict.setdefault``) whose ``next()`` runs atomically under CPython's GIL,
    so no two requests send the same ``nc`` with a nonce.
    """

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        self._username = _to_bytes(username)
        self._password = _to_bytes(password)
        # The challenge answered last, per origin.
        self._sessions: dict[tuple[str, str, int], _Session] = {}
        # The nonce count of each (origin, nonce) in use.
        self._counters: dict[tuple[tuple[str, str, int], str], Iterator[int]] = {}

    def __repr__(self) -> str:
        return f"DigestAuth(username={self._username.decode('utf-8', 'replace')!r}, password=***)"

    def _new_cnonce(self) -> str:
        """A fresh client nonce, for each request (override to make tests repeatable)."""
        return secrets.token_hex(16)

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        origin = request.url.origin
        # Only this origin's challenge is ever answered: credentials (even
        # hashed ones) for one server are never offered to another.
        sent_with = self._sessions.get(origin)
        if sent_with is not None:
            request.headers["Authorization"] = self._authorization(request, sent_with)
        response = yield request
        if response.status != 401:
            self._take_next_nonce(origin, response, sent_with)
            return
        challenge = self._select(response)
        if challenge is None:
            return  # not a Digest challenge: nothing to answer
        if (
            sent_with is not None
            and not challenge.stale
            and (challenge.nonce, challenge.realm)
            == (sent_with.challenge.nonce, sent_with.challenge.realm)
        ):
            return  # refused for this very nonce: the credentials are wrong
        session = self._install(origin, challenge)
        request.headers["Authorization"] = self._authorization(request, session)
        response = yield request
        if response.status != 401:
            self._take_next_nonce(origin, response, session)
            return
        # No third attempt, but a new nonce (say, stale again) serves the next request.
        try:
            challenge = self._select(response)
        except ProtocolError:
            return  # the 401 itself is the answer the caller gets
        if challenge is not None and challenge.nonce != session.challenge.nonce:
            self._install(origin, challenge)

    def _select(self, response: Response) -> _Challenge | None:
        """The first Digest challenge of ``response`` that can be answered.

        None if there is no Digest challenge; ``ProtocolError`` if there are
        some but none can be answered.
        """
        reasons: list[str] = []
        for scheme, params in parse_challenges(response.headers.get_list("www-authenticate")):
            if scheme.lower() != "digest":
                continue
            found = _digest_challenge(params)
            if isinstance(found, _Challenge):
                return found
            reasons.append(found)
        if reasons:
            raise ProtocolError(
                "cannot answer the server's Digest challenge: " + "; ".join(reasons)
            )
        return None

    def _install(self, origin: tuple[str, str, int], challenge: _Challenge) -> _Session:
        """Remember ``challenge`` as the one to answer for ``origin``."""
        counters = self._counters
        if len(counters) >= 2 * _MAX_REMEMBERED:
            # Forget the counts of nonces no origin uses any more.
            counters = self._counters = {
                (known, session.challenge.nonce): session.counter
                for known, session in list(self._sessions.items())
            }
        # setdefault is atomic: requests racing to take up the same nonce share
        # one count, so no nc value is sent twice with it.
        counter = counters.setdefault((origin, challenge.nonce), itertools.count(1))
        session = _Session(challenge, counter)
        sessions = self._sessions
        if len(sessions) >= _MAX_REMEMBERED and origin not in sessions:
            sessions = self._sessions = {}
        sessions[origin] = session
        return session

    def _take_next_nonce(
        self, origin: tuple[str, str, int], response: Response, session: _Session | None
    ) -> None:
        """Use the ``nextnonce`` the server gave in ``Authentication-Info``, if any."""
        info = response.headers.get("authentication-info")
        if session is None or not info:
            return
        next_nonce = parse_auth_params(info).get("nextnonce")
        if next_nonce and self._sessions.get(origin) is session:
            self._install(origin, replace(session.challenge, nonce=next_nonce, stale=False))

    def _authorization(self, request: Request, session: _Session) -> str:
        """The ``Authorization`` value answering ``session``'s challenge for ``request``."""
        challenge = session.challenge

        def digest(*parts: bytes) -> str:
            data = b":".join(parts)
            return hashlib.new(challenge.hash_name, data, usedforsecurity=False).hexdigest()

        # Header values arrived decoded as latin-1: encoding them back gives the
        # server's exact bytes, whatever charset it meant.
        realm = challenge.realm.encode("latin-1")
        nonce = challenge.nonce.encode("latin-1")
        uri = request.url.authority if request.method == "CONNECT" else request.url.target
        ha1 = digest(self._username, realm, self._password)
        ha2 = digest(request.method.encode("ascii"), uri.encode("latin-1"))
        fields: list[str] = []
        if challenge.userhash:
            fields.append(f"username={_quote(digest(self._username, realm))}")
        elif all(0x20 <= byte < 0x7F for byte in self._username):
            fields.append(f"username={_quote(self._username.decode('ascii'))}")
        else:
            # Non-ASCII (or control) characters go percent-encoded (RFC 7616 §3.4.4).
            fields.append(f"username*=UTF-8''{quote(self._username, safe='')}")
        fields += [
            f"realm={_quote(challenge.realm)}",
            f"uri={_quote(uri)}",
            f"algorithm={challenge.algorithm}",
            f"nonce={_quote(challenge.nonce)}",
        ]
        if challenge.qop is None:
            response = digest(ha1.encode(), nonce, ha2.encode())
        else:
            nc = f"{next(session.counter):08x}"
            cnonce = self._new_cnonce()
            if challenge.session:
                ha1 = digest(ha1.encode(), nonce, cnonce.encode("latin-1"))
            response = digest(
                ha1.encode(),
                nonce,
                nc.encode(),
                cnonce.encode("latin-1"),
                challenge.qop.encode(),
                ha2.encode(),
            )
            fields += [f"nc={nc}", f"cnonce={_quote(cnonce)}", f"qop={challenge.qop}"]
        fields.append(f'response="{response}"')
        if challenge.opaque is not None:
            fields.append(f"opaque={_quote(challenge.opaque)}")
        if challenge.userhash:
            fields.append("userhash=true")
        return "Digest " + ", ".join(fields)
