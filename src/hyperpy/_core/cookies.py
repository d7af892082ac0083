"""A cookie store for clients, built on the standard library's ``http.cookiejar``.

Which cookies a response may set and which a request carries (domain, path,
expiry, ``Secure``) is decided by the jar's ``DefaultCookiePolicy``; this module
only adapts hyperpy's ``Request`` and ``Response`` to the urllib-shaped objects
the jar expects, and gives it a mapping interface.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from typing import Any, TypeVar, Union, cast, overload

from .._models import Headers, Request, Response

__all__ = ["CookieConflict", "CookieTypes", "Cookies", "default_policy"]

CookieTypes = Union["Cookies", CookieJar, Mapping[str, str], Sequence[tuple[str, str]], None]

T = TypeVar("T")

_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A value may not end the cookie-pair early (";") or break the header line.
_BAD_VALUE = re.compile(r"[;\x00-\x08\x0a-\x1f\x7f]")


class CookieConflict(ValueError):
    """Several cookies of that name match, with different values: say which one.

    Narrow the look-up with ``domain=`` and/or ``path=``.
    """


class _Policy(DefaultCookiePolicy):
    """``DefaultCookiePolicy`` plus the RFC 6265bis rules for secure cookies.

    A ``Secure`` cookie (or a ``__Secure-``/``__Host-`` prefixed one) is only
    accepted from an https URL, so a plain-http response cannot overwrite it.
    """

    def set_ok(self, cookie: Cookie, request: Any) -> bool:
        if not super().set_ok(cookie, request):
            return False
        # The same schemes the policy sends secure cookies over.
        secure_origin = request.type in getattr(self, "secure_protocols", ("https", "wss"))
        if cookie.secure and not secure_origin:
            return False
        if cookie.name.startswith("__Secure-") and not cookie.secure:
            return False
        if cookie.name.startswith("__Host-"):
            return cookie.secure and not cookie.domain_specified and cookie.path == "/"
        return True


def default_policy() -> DefaultCookiePolicy:
    """The policy of a new ``Cookies``' jar.

    Besides the standard rules, a cookie set without a ``Domain`` attribute
    (host-only) is sent back to that host only, never to its subdomains
    (RFC 6265 §5.3; the standard library's default would send it to them).
    """
    return _Policy(strict_ns_domain=DefaultCookiePolicy.DomainStrictNonDomain)


class _JarRequest:
    """A ``Request`` dressed as the ``urllib.request.Request`` that ``CookieJar`` reads."""

    unverifiable = False  # every request is one the user asked for

    def __init__(self, request: Request) -> None:
        self._request = request
        self.type = request.url.scheme
        self.host = request.url.authority
        host = request.url.host
        # What urllib's Request would give: the host, lowercased, without the port.
        self.origin_req_host = f"[{host}]" if ":" in host else host.lower()

    def get_full_url(self) -> str:
        return str(self._request.url)

    def is_unverifiable(self) -> bool:
        return self.unverifiable

    def has_header(self, name: str) -> bool:
        return name in self._request.headers

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return self._request.headers.get(name, default)

    def header_items(self) -> list[tuple[str, str]]:
        return self._request.headers.multi_items()

    def add_unredirected_header(self, name: str, value: str) -> None:
        self._request.headers[name] = value


class _JarResponse:
    """A ``Response``'s headers dressed as the ``info()`` message ``CookieJar`` reads."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    def info(self) -> _JarResponse:
        return self

    def get_all(self, name: str, default: list[str] | None = None) -> list[str] | None:
        return self._headers.get_list(name) or default


def _same_domain(stored: str, wanted: str) -> bool:
    # ".example.com" (from Domain=example.com) and "example.com" name one site.
    return stored.lstrip(".").lower() == wanted.lstrip(".").lower()


class Cookies(MutableMapping[str, str]):
    """Cookies by name, kept in a ``http.cookiejar.CookieJar`` (``.jar``).

    Build it from None, a dict or list of ``(name, value)`` pairs (set for
    every host, path "/"), another ``Cookies`` (its cookies are copied) or a
    ``CookieJar`` (used as is, with its own policy; a new jar gets
    ``default_policy()``).

    A client calls ``extract_cookies(response)`` on each response it receives
    and ``set_cookie_header(request)`` on each request it sends. The mapping
    interface sees one value per name: iterating yields each name once, and a
    name whose cookies (for several domains or paths) disagree raises
    ``CookieConflict``; ``get``, ``delete`` and ``clear`` take ``domain=`` and
    ``path=`` to pick. Expired cookies are left out.

    One ``Cookies`` may be shared by many threads: the jar guards its state
    with its own lock, which this class also holds while it reads the jar.
    """

    jar: CookieJar

    def __init__(self, cookies: CookieTypes = None) -> None:
        if isinstance(cookies, CookieJar):
            self.jar = cookies
            return
        self.jar = CookieJar(policy=default_policy())
        if cookies is None:
            return
        if isinstance(cookies, Cookies):
            for cookie in cookies._all():
                self.jar.set_cookie(copy.copy(cookie))
            return
        pairs = cookies.items() if isinstance(cookies, Mapping) else cookies
        for name, value in pairs:
            self.set(name, value)

    # --- exchange with requests and responses ------------------------------------

    def extract_cookies(self, response: Response) -> None:
        """Store the cookies of ``response``'s ``Set-Cookie`` fields that the policy allows.

        They are judged against the URL of ``response.request``. A plain-http
        response can neither set a ``Secure`` cookie nor replace or delete one.
        """
        if response.request is None:
            raise ValueError("the response has no request, so no URL to judge its cookies by")
        if b"set-cookie" not in {name for name, _ in response.headers.raw}:
            return  # most responses set none: skip the jar's work and its lock
        request = _JarRequest(response.request)
        with self._locked():
            # RFC 6265bis: a plain-http response may not overwrite or delete a
            # Secure cookie; put back any it replaced.
            kept = [] if request.type == "https" else [c for c in self.jar if c.secure]
            # The adapters provide just what CookieJar reads of urllib's classes.
            self.jar.extract_cookies(cast(Any, _JarResponse(response.headers)), cast(Any, request))
            for cookie in kept:
                self.jar.set_cookie(cookie)

    @property
    def is_empty(self) -> bool:
        """No cookie is stored (a cheap check, for the per-request hot path)."""
        store = getattr(self.jar, "_cookies", None)  # CookieJar's own dict of domains
        return not store if isinstance(store, dict) else not list(self.jar)

    def set_cookie_header(self, request: Request) -> None:
        """Add a ``Cookie`` field with the stored cookies that ``request``'s URL may carry.

        A request that already has a ``Cookie`` field is left as it is: the
        field set by hand wins (drop it before reusing a request for another URL).
        """
        self.jar.add_cookie_header(cast(Any, _JarRequest(request)))

    # --- by name -------------------------------------------------------------------

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        """Store a cookie, replacing one of the same name, domain and path.

        ``domain`` works like a ``Domain`` attribute (that host and its
        subdomains); the default "" sends the cookie to every host.
        """
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid cookie name {name!r}")
        if _BAD_VALUE.search(value):
            raise ValueError(f"invalid cookie value {value!r}: no ';' or control characters")
        if not path.startswith("/"):
            raise ValueError(f"a cookie path must start with '/', not {path!r}")
        cookie = Cookie(
            version=0,
            name=name,
            value=value,
            port=None,
            port_specified=False,
            domain=domain,
            # "Specified" lets the cookie reach subdomains (and, for "", every
            # host) under the host-only rule of default_policy().
            domain_specified=True,
            domain_initial_dot=domain.startswith("."),
            path=path,
            path_specified=True,
            secure=False,
            expires=None,
            discard=True,
            comment=None,
            comment_url=None,
            rest={},
        )
        self.jar.set_cookie(cookie)

    @overload
    def get(
        self, name: str, default: None = None, domain: str | None = None, path: str | None = None
    ) -> str | None: ...

    @overload
    def get(
        self, name: str, default: str | T, domain: str | None = None, path: str | None = None
    ) -> str | T: ...

    def get(
        self,
        name: str,
        default: str | T | None = None,
        domain: str | None = None,
        path: str | None = None,
    ) -> str | T | None:
        """The value of the cookie ``name`` (within ``domain``/``path`` if given).

        ``default`` if there is none; ``CookieConflict`` if several match with
        different values.
        """
        values = {_value(cookie) for cookie in self._matching(name, domain, path)}
        if not values:
            return default
        if len(values) > 1:
            where = "".join(
                f" {cookie.domain or '*'}{cookie.path}"
                for cookie in self._matching(name, domain, path)
            )
            raise CookieConflict(
                f"several cookies named {name!r} match ({where.strip()}): "
                "give domain= and/or path= to choose one"
            )
        return values.pop()

    def delete(self, name: str, domain: str | None = None, path: str | None = None) -> None:
        """Remove every cookie named ``name`` (within ``domain``/``path`` if given)."""
        for cookie in self._matching(name, domain, path):
            self._remove(cookie)

    def clear(self, domain: str | None = None, path: str | None = None) -> None:
        """Remove every cookie, or only those of ``domain`` and/or ``path``."""
        if domain is None and path is None:
            self.jar.clear()
            return
        for cookie in self._all():
            if (domain is None or _same_domain(cookie.domain, domain)) and (
                path is None or cookie.path == path
            ):
                self._remove(cookie)

    # --- the mapping ---------------------------------------------------------------

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        matching = self._matching(name, None, None)
        if not matching:
            raise KeyError(name)
        for cookie in matching:
            self._remove(cookie)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self._matching(name, None, None))

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        # Values are often session secrets: names and scopes only.
        where = ", ".join(
            f"{cookie.name} for {cookie.domain or '*'}{cookie.path}" for cookie in self._live()
        )
        return f"<Cookies [{where}]>"

    # --- helpers -------------------------------------------------------------------

    def _locked(self) -> AbstractContextManager[Any]:
        """The jar's own (reentrant) lock, which all its methods take."""
        lock = getattr(self.jar, "_cookies_lock", None)
        return cast(AbstractContextManager[Any], lock) if lock is not None else nullcontext()

    def _all(self) -> list[Cookie]:
        # CookieJar walks its nested dicts unlocked when iterated; hold its lock
        # so that another thread's extract_cookies cannot change them mid-walk.
        with self._locked():
            return list(self.jar)

    def _live(self) -> list[Cookie]:
        return [cookie for cookie in self._all() if not cookie.is_expired()]

    def _names(self) -> list[str]:
        return list(dict.fromkeys(cookie.name for cookie in self._live()))

    def _matching(self, name: str, domain: str | None, path: str | None) -> list[Cookie]:
        return [
            cookie
            for cookie in self._live()
            if cookie.name == name
            and (domain is None or _same_domain(cookie.domain, domain))
            and (path is None or cookie.path == path)
        ]

    def _remove(self, cookie: Cookie) -> None:
        try:
            self.jar.clear(cookie.domain, cookie.path, cookie.name)
        except KeyError:  # another thread removed it first
            pass


def _value(cookie: Cookie) -> str:
    # A Set-Cookie with no "=" stores None as the value.
    return cookie.value if cookie.value is not None else ""
