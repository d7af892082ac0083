"""Unit tests of the authentication flows (``hyperpy._core.auth``): no IO.

Each flow is driven by hand, as a client would: ``next()`` for the first
request, ``.send(response)`` for each response.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Generator

import pytest

from hyperpy._core import auth as auth_module
from hyperpy._core.auth import (
    Auth,
    BasicAuth,
    DigestAuth,
    FunctionAuth,
    auth_from_url,
    parse_auth_params,
    parse_challenges,
    to_auth,
)
from hyperpy._exceptions import ProtocolError
from hyperpy._models import Request, Response

# RFC 7616 §3.9.1
USERNAME = "Mufasa"
PASSWORD = "Circle of Life"
REALM = "http-auth@example.org"
NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
URL = "http://www.example.org/dir/index.html"
RFC_MD5_RESPONSE = "8ca523f5e9506fed4657c9700eebdbec"
RFC_SHA256_RESPONSE = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"

HASHES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}


class FixedDigest(DigestAuth):
    """DigestAuth with a known sequence of client nonces."""

    def __init__(self, username: str | bytes, password: str | bytes, *cnonces: str) -> None:
        super().__init__(username, password)
        self.cnonces = list(cnonces) or [CNONCE]
        self.used = 0

    def _new_cnonce(self) -> str:
        cnonce = self.cnonces[min(self.used, len(self.cnonces) - 1)]
        self.used += 1
        return cnonce


def challenge(**params: str) -> str:
    """A ``WWW-Authenticate: Digest`` value: the RFC example's, with ``params`` changed."""
    values = {
        "realm": f'"{REALM}"',
        "qop": '"auth, auth-int"',
        "algorithm": "MD5",
        "nonce": f'"{NONCE}"',
        "opaque": f'"{OPAQUE}"',
    }
    values.update(params)
    return "Digest " + ", ".join(f"{k}={v}" for k, v in values.items() if v)


def unauthorized(request: Request, *www_authenticate: str) -> Response:
    return Response(
        401, headers=[("WWW-Authenticate", value) for value in www_authenticate], request=request
    )


def ok(request: Request, **headers: str) -> Response:
    return Response(200, headers=headers, request=request)


def fields(request: Request) -> dict[str, str]:
    """The parameters of a request's ``Authorization: Digest`` field."""
    [(scheme, params)] = parse_challenges([request.headers["Authorization"]])
    assert scheme == "Digest"
    return params


def first_exchange(auth: Auth, url: str = URL, method: str = "GET") -> tuple[Request, ...]:
    """Start a flow; return the first request and, after a RFC-style 401, the second."""
    flow = auth.auth_flow(Request(method, url))
    first = next(flow)
    second = flow.send(unauthorized(first, challenge()))
    return first, second


def expected_response(
    algorithm: str,
    *,
    method: str = "GET",
    uri: str = "/dir/index.html",
    nonce: str = NONCE,
    nc: str = "00000001",
    cnonce: str = CNONCE,
    qop: str | None = "auth",
    username: str = USERNAME,
    password: str = PASSWORD,
) -> str:
    """The response digest of RFC 7616 §3.4.1, computed independently."""
    name = HASHES[algorithm.removesuffix("-sess")]

    def h(text: str) -> str:
        return hashlib.new(name, text.encode()).hexdigest()

    ha1 = h(f"{username}:{REALM}:{password}")
    if algorithm.endswith("-sess"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}")
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# --- Basic -------------------------------------------------------------------------


def basic_header(auth: Auth) -> str:
    flow = auth.auth_flow(Request("GET", "https://example.com/"))
    request = next(flow)
    with pytest.raises(StopIteration):
        flow.send(ok(request))
    return request.headers["authorization"]


def test_basic_auth_header() -> None:
    # RFC 7617 §2's example
    assert basic_header(BasicAuth("Aladdin", "open sesame")) == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


def test_basic_auth_encodes_str_as_utf8() -> None:
    header = basic_header(BasicAuth("jürgen", "pässwörd€"))
    assert header == "Basic " + base64.b64encode("jürgen:pässwörd€".encode()).decode()


def test_basic_auth_sends_bytes_as_they_are() -> None:
    header = basic_header(BasicAuth(b"j\xfcrgen", b"p\xe4ss"))
    assert base64.b64decode(header.removeprefix("Basic ")) == b"j\xfcrgen:p\xe4ss"


def test_basic_auth_password_may_hold_colons_username_may_not() -> None:
    header = basic_header(BasicAuth("user", "a:b:c"))
    assert base64.b64decode(header.removeprefix("Basic ")) == b"user:a:b:c"
    with pytest.raises(ValueError, match="cannot contain ':'"):
        BasicAuth("us:er", "pw")


def test_basic_auth_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(BasicAuth("user", "hunter2"))
    assert "user" in repr(BasicAuth("user", "hunter2"))


def test_auth_from_url() -> None:
    assert auth_from_url("", "") is None
    assert auth_from_url("", "secret") is None
    auth = auth_from_url("user", "")
    assert isinstance(auth, BasicAuth)
    assert basic_header(auth) == "Basic " + base64.b64encode(b"user:").decode()


# --- to_auth, FunctionAuth, the base class --------------------------------------------


def bearer(request: Request) -> Request:
    request.headers["Authorization"] = "Bearer token-1"
    return request


def test_to_auth_conversions() -> None:
    assert to_auth(None) is None
    basic = to_auth(("user", "pass"))
    assert isinstance(basic, BasicAuth)
    assert basic_header(basic) == basic_header(BasicAuth("user", "pass"))
    assert isinstance(to_auth((b"user", b"pass")), BasicAuth)
    digest = DigestAuth("user", "pass")
    assert to_auth(digest) is digest
    function = to_auth(bearer)
    assert isinstance(function, FunctionAuth)
    assert basic_header(function) == "Bearer token-1"


@pytest.mark.parametrize(
    "value",
    ["user:pass", ("user",), ("user", "pass", "extra"), ("user", 1), ["user", "pass"], 42],
)
def test_to_auth_rejects_other_values(value: object) -> None:
    with pytest.raises(TypeError, match="auth"):
        to_auth(value)


def test_function_auth_must_return_the_request() -> None:
    def forgetful(request: Request) -> Request:
        request.headers["Authorization"] = "Bearer x"
        return None  # type: ignore[return-value]

    with pytest.raises(TypeError, match="must return the Request"):
        next(FunctionAuth(forgetful).auth_flow(Request("GET", URL)))
    with pytest.raises(TypeError, match="callable"):
        FunctionAuth("Bearer x")  # type: ignore[arg-type]


def test_base_auth_sends_the_request_as_is() -> None:
    auth = Auth()
    assert auth.requires_response_body is False
    assert DigestAuth.requires_response_body is False
    request = Request("GET", URL, headers={"x": "1"})
    flow = auth.auth_flow(request)
    assert next(flow) is request
    assert "authorization" not in request.headers
    with pytest.raises(StopIteration):
        flow.send(ok(request))


def test_custom_scheme_from_the_docstring() -> None:
    tokens = iter(["stale-token", "fresh-token"])

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

    flow = to_auth(BearerAuth(lambda: next(tokens)))
    assert flow is not None
    steps = flow.auth_flow(Request("GET", URL))
    request = next(steps)
    assert request.headers["authorization"] == "Bearer stale-token"
    request = steps.send(Response(401, request=request))
    assert request.headers["authorization"] == "Bearer fresh-token"
    with pytest.raises(StopIteration):
        steps.send(ok(request))


# --- Digest: the RFC 7616 vectors -----------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "rfc_value"), [("MD5", RFC_MD5_RESPONSE), ("SHA-256", RFC_SHA256_RESPONSE)]
)
def test_digest_matches_rfc_7616_example(algorithm: str, rfc_value: str) -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    flow = auth.auth_flow(Request("GET", URL))
    first = next(flow)
    assert "authorization" not in first.headers  # no credentials before a challenge
    second = flow.send(unauthorized(first, challenge(algorithm=algorithm)))
    sent = fields(second)
    assert sent["response"] == expected_response(algorithm) == rfc_value
    assert sent == {
        "username": USERNAME,
        "realm": REALM,
        "uri": "/dir/index.html",
        "algorithm": algorithm,
        "nonce": NONCE,
        "nc": "00000001",
        "cnonce": CNONCE,
        "qop": "auth",
        "response": rfc_value,
        "opaque": OPAQUE,
    }
    with pytest.raises(StopIteration):
        flow.send(ok(second))


@pytest.mark.parametrize(
    "algorithm", ["MD5-sess", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess"]
)
def test_digest_other_algorithms(algorithm: str) -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    flow = auth.auth_flow(Request("GET", URL))
    second = flow.send(unauthorized(next(flow), challenge(algorithm=algorithm.lower())))
    sent = fields(second)
    assert sent["algorithm"] == algorithm  # canonical spelling, whatever the server's
    assert sent["response"] == expected_response(algorithm)


def test_digest_uri_keeps_the_query() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    _, second = first_exchange(auth, "http://www.example.org/dir/index.html?a=1&b=2", "POST")
    sent = fields(second)
    assert sent["uri"] == "/dir/index.html?a=1&b=2"
    assert sent["response"] == expected_response(
        "MD5", method="POST", uri="/dir/index.html?a=1&b=2"
    )


def test_digest_without_qop_is_rfc_2069() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    flow = auth.auth_flow(Request("GET", URL))
    second = flow.send(unauthorized(next(flow), challenge(qop="", opaque="")))
    sent = fields(second)
    assert sent["response"] == expected_response("MD5", qop=None)
    assert not {"nc", "cnonce", "qop", "opaque"} & sent.keys()


def test_digest_prefers_auth_and_refuses_auth_int_alone() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    flow = auth.auth_flow(Request("GET", URL))
    second = flow.send(unauthorized(next(flow), challenge(qop='"auth-int,auth"')))
    assert fields(second)["qop"] == "auth"

    flow = DigestAuth(USERNAME, PASSWORD).auth_flow(Request("GET", URL))
    with pytest.raises(ProtocolError, match="auth-int is not supported"):
        flow.send(unauthorized(next(flow), challenge(qop='"auth-int"')))


def test_digest_refuses_unknown_algorithms_and_sess_without_qop() -> None:
    flow = DigestAuth(USERNAME, PASSWORD).auth_flow(Request("GET", URL))
    with pytest.raises(ProtocolError, match="'SHA-1' is not supported"):
        flow.send(unauthorized(next(flow), challenge(algorithm="SHA-1")))
    flow = DigestAuth(USERNAME, PASSWORD).auth_flow(Request("GET", URL))
    with pytest.raises(ProtocolError, match="needs a qop"):
        flow.send(unauthorized(next(flow), challenge(algorithm="MD5-sess", qop="")))
    flow = DigestAuth(USERNAME, PASSWORD).auth_flow(Request("GET", URL))
    with pytest.raises(ProtocolError, match="no nonce"):
        flow.send(unauthorized(next(flow), challenge(nonce="")))


def test_digest_picks_the_first_challenge_it_can_answer() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    flow = auth.auth_flow(Request("GET", URL))
    second = flow.send(
        unauthorized(
            next(flow),
            challenge(algorithm="SHA-1") + ", " + challenge(algorithm="SHA-256"),
            challenge(algorithm="MD5"),
        )
    )
    assert fields(second)["response"] == RFC_SHA256_RESPONSE


def test_digest_among_other_schemes_in_one_field() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    flow = auth.auth_flow(Request("GET", URL))
    field = (
        'Basic realm="Digest, nonce=\\"evil\\"", charset="UTF-8", '
        + challenge()
        + ', Bearer realm="api", Negotiate'
    )
    second = flow.send(unauthorized(next(flow), field))
    assert fields(second)["response"] == RFC_MD5_RESPONSE


def test_digest_in_a_separate_field() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    flow = auth.auth_flow(Request("GET", URL))
    second = flow.send(unauthorized(next(flow), 'Basic realm="x"', "Negotiate", challenge()))
    assert fields(second)["response"] == RFC_MD5_RESPONSE


def test_digest_leaves_other_schemes_alone() -> None:
    flow = DigestAuth(USERNAME, PASSWORD).auth_flow(Request("GET", URL))
    first = next(flow)
    with pytest.raises(StopIteration):
        flow.send(unauthorized(first, 'Basic realm="x"'))
    flow = DigestAuth(USERNAME, PASSWORD).auth_flow(Request("GET", URL))
    with pytest.raises(StopIteration):
        flow.send(unauthorized(next(flow)))  # no WWW-Authenticate at all


def test_digest_wrong_credentials_end_the_flow_with_the_second_401() -> None:
    auth = FixedDigest(USERNAME, "wrong")
    flow = auth.auth_flow(Request("GET", URL))
    second = flow.send(unauthorized(next(flow), challenge()))
    assert "authorization" in second.headers
    with pytest.raises(StopIteration):
        # Even a fresh nonce does not buy a third attempt.
        flow.send(unauthorized(second, challenge(nonce='"another"')))


def test_digest_userhash() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    flow = auth.auth_flow(Request("GET", URL))
    second = flow.send(unauthorized(next(flow), challenge(algorithm="SHA-256", userhash="true")))
    sent = fields(second)
    assert sent["userhash"] == "true"
    assert sent["username"] == hashlib.sha256(f"{USERNAME}:{REALM}".encode()).hexdigest()
    assert sent["response"] == RFC_SHA256_RESPONSE  # the hash hides the name, not the secret


def test_digest_non_ascii_username() -> None:
    auth = FixedDigest("Jäsøn Doe", PASSWORD)
    _, second = first_exchange(auth)
    header = second.headers["authorization"]
    assert "username*=UTF-8''J%C3%A4s%C3%B8n%20Doe" in header
    assert fields(second)["response"] == expected_response("MD5", username="Jäsøn Doe")


def test_digest_quotes_and_escapes_parameters() -> None:
    auth = FixedDigest('A "quoted" name\\', PASSWORD)
    flow = auth.auth_flow(Request("GET", URL))
    second = flow.send(unauthorized(next(flow), challenge(opaque='"o\\"p, q"')))
    sent = fields(second)
    assert sent["username"] == 'A "quoted" name\\'
    assert sent["opaque"] == 'o"p, q'


def test_digest_connect_uses_the_authority() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    _, second = first_exchange(auth, "https://www.example.org:8443/", "CONNECT")
    assert fields(second)["uri"] == "www.example.org:8443"


# --- Digest: state across requests ----------------------------------------------------


def test_digest_reuses_the_challenge_with_a_growing_nonce_count() -> None:
    auth = FixedDigest(USERNAME, PASSWORD, "c1", "c2", "c3")
    first_exchange(auth)
    for nc, cnonce in [("00000002", "c2"), ("00000003", "c3")]:
        flow = auth.auth_flow(Request("GET", URL))
        request = next(flow)  # credentials at once: no round trip
        sent = fields(request)
        assert (sent["nc"], sent["cnonce"], sent["nonce"]) == (nc, cnonce, NONCE)
        assert sent["response"] == expected_response("MD5", nc=nc, cnonce=cnonce)
        with pytest.raises(StopIteration):
            flow.send(ok(request))


def test_digest_stale_nonce_is_retried_once_with_the_new_nonce() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    first_exchange(auth)
    flow = auth.auth_flow(Request("GET", URL))
    request = next(flow)
    assert fields(request)["nc"] == "00000002"
    retry = flow.send(unauthorized(request, challenge(nonce='"fresh"', stale="true")))
    sent = fields(retry)
    assert (sent["nonce"], sent["nc"]) == ("fresh", "00000001")
    assert sent["response"] == expected_response("MD5", nonce="fresh")
    with pytest.raises(StopIteration):  # stale again: still only one retry
        flow.send(unauthorized(retry, challenge(nonce='"fresher"', stale="true")))
    # The next request uses the newest nonce the server gave.
    assert fields(next(auth.auth_flow(Request("GET", URL))))["nonce"] == "fresher"


def test_digest_refused_for_the_same_nonce_is_not_retried() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    first_exchange(auth)
    flow = auth.auth_flow(Request("GET", URL))
    request = next(flow)
    with pytest.raises(StopIteration):
        flow.send(unauthorized(request, challenge()))


def test_digest_new_nonce_without_stale_is_retried_once() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    first_exchange(auth)
    flow = auth.auth_flow(Request("GET", URL))
    retry = flow.send(unauthorized(next(flow), challenge(nonce='"rotated"')))
    assert fields(retry)["nonce"] == "rotated"
    with pytest.raises(StopIteration):
        flow.send(unauthorized(retry, challenge(nonce='"rotated"')))


def test_digest_credentials_stay_with_their_origin() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    first_exchange(auth, "http://www.example.org/")
    for other in ["http://evil.example/", "https://www.example.org/", "http://www.example.org:81/"]:
        assert "authorization" not in next(auth.auth_flow(Request("GET", other))).headers
    request = next(auth.auth_flow(Request("GET", "http://www.example.org/x")))
    assert "authorization" in request.headers


def test_digest_next_nonce() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    flow = auth.auth_flow(Request("GET", URL))
    second = flow.send(unauthorized(next(flow), challenge()))
    with pytest.raises(StopIteration):
        flow.send(ok(second, **{"Authentication-Info": 'rspauth="x", nextnonce="next-1"'}))
    sent = fields(next(auth.auth_flow(Request("GET", URL))))
    assert (sent["nonce"], sent["nc"]) == ("next-1", "00000001")


def test_digest_flows_racing_for_one_nonce_share_its_count() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    flow_a = auth.auth_flow(Request("GET", URL))
    flow_b = auth.auth_flow(Request("GET", URL))
    first_a, first_b = next(flow_a), next(flow_b)  # both before any challenge
    second_a = flow_a.send(unauthorized(first_a, challenge()))
    second_b = flow_b.send(unauthorized(first_b, challenge()))
    assert (fields(second_a)["nc"], fields(second_b)["nc"]) == ("00000001", "00000002")


def test_digest_nonce_counts_are_unique_across_threads() -> None:
    auth = DigestAuth(USERNAME, PASSWORD)
    first_exchange(auth)
    seen: list[str] = []

    def work() -> None:
        for _ in range(300):
            seen.append(fields(next(auth.auth_flow(Request("GET", URL))))["nc"])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == len(set(seen)) == 2400
    assert max(int(nc, 16) for nc in seen) == 2401


def test_digest_cnonces_are_fresh() -> None:
    auth = DigestAuth(USERNAME, PASSWORD)
    first_exchange(auth)
    cnonces = {fields(next(auth.auth_flow(Request("GET", URL))))["cnonce"] for _ in range(20)}
    assert len(cnonces) == 20


def test_digest_final_401_is_returned_even_if_unanswerable() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    flow = auth.auth_flow(Request("GET", URL))
    second = flow.send(unauthorized(next(flow), challenge()))
    with pytest.raises(StopIteration):
        flow.send(unauthorized(second, challenge(algorithm="SHA-1")))
    # The challenge answered last stays in use.
    assert fields(next(auth.auth_flow(Request("GET", URL))))["nonce"] == NONCE


def test_digest_success_without_next_nonce_keeps_the_nonce() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    first_exchange(auth)
    flow = auth.auth_flow(Request("GET", URL))
    request = next(flow)
    with pytest.raises(StopIteration):
        flow.send(ok(request, **{"Authentication-Info": 'rspauth="x"'}))
    sent = fields(next(auth.auth_flow(Request("GET", URL))))
    assert (sent["nonce"], sent["nc"]) == (NONCE, "00000003")


def test_digest_forgets_origins_beyond_its_limit() -> None:
    auth = FixedDigest(USERNAME, PASSWORD)
    for n in range(200):
        first_exchange(auth, f"http://host{n}.example/")
        flow = auth.auth_flow(Request("GET", f"http://host{n}.example/"))
        request = next(flow)
        with pytest.raises(StopIteration):
            flow.send(ok(request, **{"Authentication-Info": f'nextnonce="n{n}"'}))
    assert len(auth._sessions) <= 64
    assert len(auth._counters) <= 128
    # The newest origin is still remembered, with its latest nonce.
    sent = fields(next(auth.auth_flow(Request("GET", "http://host199.example/"))))
    assert (sent["nonce"], sent["nc"]) == ("n199", "00000001")


def test_digest_algorithm_missing_from_hashlib(monkeypatch: pytest.MonkeyPatch) -> None:
    assert auth_module._hash_available("sha256")
    assert not auth_module._hash_available("no-such-hash")
    monkeypatch.setattr(auth_module, "_hash_available", lambda name: name != "sha512_256")
    flow = DigestAuth(USERNAME, PASSWORD).auth_flow(Request("GET", URL))
    with pytest.raises(ProtocolError, match="SHA-512-256 is not available"):
        flow.send(unauthorized(next(flow), challenge(algorithm="SHA-512-256")))


def test_reprs_hide_passwords() -> None:
    assert PASSWORD not in repr(DigestAuth(USERNAME, PASSWORD))
    assert USERNAME in repr(DigestAuth(USERNAME, PASSWORD))
    assert "bearer" in repr(FunctionAuth(bearer))


# --- the challenge parser -------------------------------------------------------------


def test_parse_challenges() -> None:
    assert parse_challenges(
        [
            'Basic realm="a, \\"b\\"", charset=UTF-8, Newauth realm="apps", type=1,'
            ' title="Login to \\"apps\\"", Negotiate abc/+d==, NTLM',
            '  ,Digest  realm = x , nonce="n\\\\" ,stale=TRUE',
        ]
    ) == [
        ("Basic", {"realm": 'a, "b"', "charset": "UTF-8"}),
        ("Newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        ("Negotiate", {"": "abc/+d=="}),
        ("NTLM", {}),
        ("Digest", {"realm": "x", "nonce": "n\\", "stale": "TRUE"}),
    ]


def test_parse_challenges_tolerates_malformed_fields() -> None:
    assert parse_challenges(['Digest nonce="n", realm="unterminated, \\']) == [
        ("Digest", {"nonce": "n", "realm": "unterminated, \\"})
    ]
    assert parse_challenges(['orphan=1, @@ "stray", Digest REALM="r", realm="dup"']) == [
        ("Digest", {"realm": "r"})
    ]
    assert parse_challenges(["", ",,,"]) == []


def test_parse_auth_params() -> None:
    assert parse_auth_params('qop=auth, rspauth="abc", cnonce="x, y", nc=00000001') == {
        "qop": "auth",
        "rspauth": "abc",
        "cnonce": "x, y",
        "nc": "00000001",
    }
