"""HTTP/1.1 request smuggling and request-target abuse, against both servers.

* ``test_ambiguous_framing_is_rejected``: requests whose body length two parsers
  could read differently, each carrying a second request in the bytes one of
  them would take for the body (request smuggling: CL.TE / TE.CL, Watchfire 2005;
  PortSwigger "HTTP Desync Attacks", 2019). RFC 9112 §6.1: Transfer-Encoding
  with chunked not last is a 400; §6.3: a message with both Transfer-Encoding
  and Content-Length "ought to be handled as an error", and the connection must
  be closed after responding; invalid or differing Content-Length values are an
  unrecoverable error (400 and close); §5.1: no whitespace before the colon;
  §5.2: obs-fold rejected (400); §7.1: an invalid chunk size is a framing
  error. Exactly one response, a 400 (501 for an unknown transfer coding,
  RFC 9112 §6.1), then the close: never the smuggled request's answer.
* ``test_absolute_form_target``: ``GET http://example.org/path?x=1`` with
  ``Host: other``: RFC 9112 §3.2.2 says the server MUST ignore Host and use the
  target's authority; the path is ``/path``.
* ``test_connect_is_refused``: ``CONNECT example.org:443`` to an origin server
  (RFC 9110 §9.3.6): answered 405 or 501 at once, no hang.
* ``test_h2c_upgrade_with_bad_settings``: ``Upgrade: h2c`` with an HTTP2-Settings
  that is not base64url, not a whole number of settings, or carries an invalid
  value, or that is missing or repeated (RFC 7540 §3.2.1; RFC 9113 §3.1 keeps
  h2c out of scope): a 400 or the request served over HTTP/1.1, never 101.
  ``test_h2c_upgrade_with_valid_settings`` is the control: the same request
  with good settings is upgraded.

After each bad request the server still answers a normal request on a new
connection.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest

from .harness import Checks, H1Result, ServerProcess, h1_exchange, still_serves

SMUGGLED = b"GET /status/299 HTTP/1.1\r\nHost: x\r\n\r\n"
CHUNKED_THEN_SMUGGLED = b"0\r\n\r\n" + SMUGGLED


@dataclass(frozen=True)
class BadFraming:
    name: str
    request: bytes
    statuses: tuple[int, ...] = (400,)


def _post(headers: bytes, body: bytes) -> bytes:
    return b"POST /echo HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body


def _cl(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n" % len(body)


BAD_FRAMING = [
    BadFraming(
        "cl-then-te",
        _post(
            _cl(CHUNKED_THEN_SMUGGLED) + b"Transfer-Encoding: chunked\r\n", CHUNKED_THEN_SMUGGLED
        ),
    ),
    BadFraming(
        "te-then-cl",
        _post(
            b"Transfer-Encoding: chunked\r\n" + _cl(CHUNKED_THEN_SMUGGLED), CHUNKED_THEN_SMUGGLED
        ),
    ),
    BadFraming(
        "te-obs-fold-with-cl",
        _post(
            b"Transfer-Encoding:\r\n chunked\r\n" + _cl(CHUNKED_THEN_SMUGGLED),
            CHUNKED_THEN_SMUGGLED,
        ),
    ),
    BadFraming(
        "te-space-before-colon-with-cl",
        _post(
            b"Transfer-Encoding : chunked\r\n" + _cl(CHUNKED_THEN_SMUGGLED), CHUNKED_THEN_SMUGGLED
        ),
    ),
    BadFraming(
        "cl-duplicate-differing",
        _post(b"Content-Length: 5\r\n" + _cl(b"hello" + SMUGGLED), b"hello" + SMUGGLED),
    ),
    BadFraming(
        "cl-list-differing",
        _post(b"Content-Length: 5, %d\r\n" % len(b"hello" + SMUGGLED), b"hello" + SMUGGLED),
    ),
    BadFraming("cl-plus-sign", _post(b"Content-Length: +5\r\n", b"hello" + SMUGGLED)),
    BadFraming(
        "bad-chunk-size",
        _post(b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n" + SMUGGLED),
    ),
    BadFraming(
        "chunked-not-final",
        _post(b"Transfer-Encoding: chunked, gzip\r\n", CHUNKED_THEN_SMUGGLED),
    ),
    BadFraming(
        "unsupported-coding-before-chunked",
        _post(b"Transfer-Encoding: gzip, chunked\r\n", CHUNKED_THEN_SMUGGLED),
        (400, 501),
    ),
    BadFraming(
        "unknown-coding",
        _post(b"Transfer-Encoding: xchunked\r\n" + _cl(b"hello"), b"hello" + SMUGGLED),
        (400, 501),
    ),
]


def _after(checks: Checks, server: ServerProcess) -> None:
    checks.expect(still_serves(server.url), "the server no longer answers a normal request")


def _one_response(checks: Checks, result: H1Result, statuses: tuple[int, ...]) -> None:
    checks.note(result.describe())
    checks.expect(
        len(result.responses) == 1 and result.statuses[0] in statuses,
        f"expected exactly one response, {' or '.join(map(str, statuses))}; got {result.statuses}",
    )
    checks.expect(299 not in result.statuses, "the smuggled request was answered")
    checks.expect(result.closed, "the connection was not closed after the error")


@pytest.mark.parametrize("case", BAD_FRAMING, ids=lambda c: c.name)
def test_ambiguous_framing_is_rejected(shared_server: ServerProcess, case: BadFraming) -> None:
    """One response (400, or 501 for an unknown coding), then the close."""
    checks = Checks(case.name)
    result = h1_exchange(shared_server.address, case.request, timeout=3.0)
    _one_response(checks, result, case.statuses)
    _after(checks, shared_server)
    checks.verify()


def test_absolute_form_target(shared_server: ServerProcess) -> None:
    """RFC 9112 §3.2.2: the target's authority replaces Host; the path is /path."""
    checks = Checks("absolute-form")
    request = (
        b"GET http://example.org/path?x=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n"
    )
    result = h1_exchange(shared_server.address, request, timeout=3.0)
    checks.note(result.describe())
    seen: dict[str, object] = {}
    if result.statuses == [200]:
        seen = json.loads(result.responses[0].body)
        checks.note(f"the handler saw {seen}")
    checks.expect(result.statuses == [200], f"expected one 200, got {result.statuses}")
    checks.expect(seen.get("path") == "/path", f"path {seen.get('path')!r}, not '/path'")
    checks.expect(seen.get("query") == "x=1", f"query {seen.get('query')!r}, not 'x=1'")
    checks.expect(seen.get("host") == "example.org", f"URL host {seen.get('host')!r}")
    checks.expect(
        seen.get("host_header") == "example.org",
        f"Host header {seen.get('host_header')!r}: the target's authority must replace it",
    )
    _after(checks, shared_server)
    checks.verify()


def test_connect_is_refused(shared_server: ServerProcess) -> None:
    """RFC 9110 §9.3.6: an origin server answers CONNECT 405 or 501, at once."""
    checks = Checks("CONNECT")
    request = b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n"
    result = h1_exchange(shared_server.address, request, timeout=3.0, stop_after=1)
    checks.note(result.describe())
    checks.expect(
        result.statuses[:1] in ([405], [501]), f"expected 405 or 501, got {result.statuses}"
    )
    checks.expect(result.elapsed < 2.0, f"answered after {result.elapsed:.2f} s")
    _after(checks, shared_server)
    checks.verify()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _setting(ident: int, value: int) -> bytes:
    return ident.to_bytes(2, "big") + value.to_bytes(4, "big")


def _upgrade(settings_lines: bytes) -> bytes:
    return (
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\n" + settings_lines + b"\r\n"
    )


BAD_UPGRADES = {
    "not-base64": b"HTTP2-Settings: !!!not*base64!!!\r\n",
    "partial-setting": b"HTTP2-Settings: " + _b64(_setting(3, 100)[:5]) + b"\r\n",
    "enable-push-2": b"HTTP2-Settings: " + _b64(_setting(2, 2)) + b"\r\n",
    "initial-window-too-large": b"HTTP2-Settings: " + _b64(_setting(4, 2**31)) + b"\r\n",
    "max-frame-size-too-small": b"HTTP2-Settings: " + _b64(_setting(5, 100)) + b"\r\n",
    "missing": b"",
    "repeated": b"HTTP2-Settings: " + _b64(_setting(3, 100)) + b"\r\n"
    b"HTTP2-Settings: " + _b64(_setting(3, 50)) + b"\r\n",
}


@pytest.mark.parametrize("case", list(BAD_UPGRADES))
def test_h2c_upgrade_with_bad_settings(shared_server: ServerProcess, case: str) -> None:
    """A 400 or the request served over HTTP/1.1 ("Hello, world!"), never a 101."""
    checks = Checks(f"h2c upgrade {case}")
    result = h1_exchange(shared_server.address, _upgrade(BAD_UPGRADES[case]), 3.0, stop_after=1)
    checks.note(result.describe())
    first = result.responses[0] if result.responses else None
    checks.expect(first is not None, "no response")
    if first is not None:
        checks.expect(first.status != 101, "switched to h2c with invalid HTTP2-Settings")
        checks.expect(
            first.status == 400 or (first.status == 200 and first.body == b"Hello, world!"),
            f"expected 400 or the HTTP/1.1 answer, got {first.status} {first.body[:40]!r}",
        )
    _after(checks, shared_server)
    checks.verify()


def test_h2c_upgrade_with_valid_settings(shared_server: ServerProcess) -> None:
    """The control: with a valid HTTP2-Settings the same request gets its 101."""
    checks = Checks("h2c upgrade valid")
    lines = b"HTTP2-Settings: " + _b64(_setting(3, 100) + _setting(4, 65535)) + b"\r\n"
    result = h1_exchange(shared_server.address, _upgrade(lines), 3.0, stop_after=1)
    checks.note(result.describe())
    checks.expect(result.statuses[:1] == [101], f"expected 101, got {result.statuses}")
    checks.verify()
