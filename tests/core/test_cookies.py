"""Unit tests of the cookie store (``hyperpy._core.cookies.Cookies``): no IO.

Cookies go in through ``extract_cookies`` on hand-built responses and come out
through ``set_cookie_header`` on hand-built requests.
"""

from __future__ import annotations

import threading
import time
from http.cookiejar import CookieJar

import pytest

from hyperpy._core.cookies import CookieConflict, Cookies, _JarRequest
from hyperpy._models import Request, Response


def receive(cookies: Cookies, url: str, *set_cookie: str) -> None:
    """``url`` answered with these ``Set-Cookie`` fields."""
    request = Request("GET", url)
    headers = [("Set-Cookie", value) for value in set_cookie]
    cookies.extract_cookies(Response(200, headers=headers, request=request))


def sent(cookies: Cookies, url: str) -> str | None:
    """The ``Cookie`` field a request to ``url`` carries."""
    request = Request("GET", url)
    cookies.set_cookie_header(request)
    return request.headers.get("cookie")


# --- which requests carry which cookies ------------------------------------------


def test_host_only_cookie_stays_with_its_host() -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/", "a=1")
    assert sent(cookies, "http://example.com/") == "a=1"
    assert sent(cookies, "http://example.com:8080/other") == "a=1"  # cookies ignore ports
    assert sent(cookies, "http://other.com/") is None
    assert sent(cookies, "http://sub.example.com/") is None
    assert sent(cookies, "http://badexample.com/") is None


def test_domain_cookie_reaches_subdomains() -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/", "a=1; Domain=example.com")
    receive(cookies, "http://www.example.com/", "b=2; Domain=.example.com")
    assert sent(cookies, "http://example.com/") == "a=1; b=2"
    assert sent(cookies, "http://sub.example.com/") == "a=1; b=2"
    assert sent(cookies, "http://deep.sub.example.com/") == "a=1; b=2"
    assert sent(cookies, "http://badexample.com/") is None
    assert sent(cookies, "http://example.org/") is None


@pytest.mark.parametrize(
    "attribute", ["Domain=other.com", "Domain=com", "Domain=.com", "Domain=sub.example.com"]
)
def test_cookie_for_a_foreign_domain_is_refused(attribute: str) -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/", f"a=1; {attribute}")
    assert len(cookies) == 0
    for url in ["http://other.com/", "http://example.com/", "http://sub.example.com/"]:
        assert sent(cookies, url) is None


def test_path_attribute() -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/", "a=1; Path=/a")
    assert sent(cookies, "http://example.com/a") == "a=1"
    assert sent(cookies, "http://example.com/a/b?q=1") == "a=1"
    assert sent(cookies, "http://example.com/b") is None
    assert sent(cookies, "http://example.com/ab") is None
    assert sent(cookies, "http://example.com/") is None


def test_default_path_is_the_directory_of_the_request() -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/docs/page", "a=1")
    assert sent(cookies, "http://example.com/docs/other") == "a=1"
    assert sent(cookies, "http://example.com/blog") is None


def test_more_specific_paths_come_first() -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/", "outer=1; Path=/", "inner=2; Path=/a/b")
    assert sent(cookies, "http://example.com/a/b/c") == "inner=2; outer=1"


def test_secure_cookie_only_over_https() -> None:
    cookies = Cookies()
    receive(cookies, "https://example.com/", "s=1; Secure", "plain=2")
    assert sent(cookies, "https://example.com/") == "s=1; plain=2"
    assert sent(cookies, "http://example.com/") == "plain=2"


def test_plain_http_cannot_set_secure_cookies() -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/", "s=1; Secure", "__Secure-a=2; Secure")
    assert len(cookies) == 0
    receive(cookies, "https://example.com/", "s=1; Secure")
    # Nor overwrite or delete one (RFC 6265bis "Leave Secure Cookies Alone").
    receive(cookies, "http://example.com/", "s=evil")
    assert sent(cookies, "https://example.com/") == "s=1"
    assert sent(cookies, "http://example.com/") is None
    receive(cookies, "http://example.com/", "s=; Max-Age=0")
    assert sent(cookies, "https://example.com/") == "s=1"
    receive(cookies, "https://example.com/", "s=; Max-Age=0")
    assert len(cookies) == 0


@pytest.mark.parametrize(
    ("set_cookie", "kept"),
    [
        ("__Secure-a=1; Secure", True),
        ("__Secure-a=1", False),
        ("__Host-a=1; Secure; Path=/", True),
        ("__Host-a=1; Secure", False),  # no Path=/ (defaults to /dir)
        ("__Host-a=1; Secure; Path=/; Domain=example.com", False),
        ("__Host-a=1; Path=/", False),
    ],
)
def test_cookie_name_prefixes(set_cookie: str, kept: bool) -> None:
    cookies = Cookies()
    receive(cookies, "https://example.com/dir/page", set_cookie)
    assert (len(cookies) == 1) is kept


def test_expired_cookies_are_dropped() -> None:
    cookies = Cookies()
    receive(
        cookies,
        "http://example.com/",
        "old=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
        "new=2; Expires=Fri, 01 Jan 2100 00:00:00 GMT",
    )
    assert sent(cookies, "http://example.com/") == "new=2"
    assert list(cookies) == ["new"]


def test_max_age_zero_deletes_the_cookie() -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/", "a=1", "b=2")
    receive(cookies, "http://example.com/", "a=gone; Max-Age=0")
    assert sent(cookies, "http://example.com/") == "b=2"
    assert "a" not in cookies


def test_cookie_expires_as_time_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/", "brief=1; Max-Age=60", "lasting=2")
    assert sent(cookies, "http://example.com/") == "brief=1; lasting=2"
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    assert sent(cookies, "http://example.com/") == "lasting=2"
    assert dict(cookies) == {"lasting": "2"}


def test_cookie_header_set_by_hand_wins() -> None:
    cookies = Cookies({"a": "1"})
    request = Request("GET", "http://example.com/", headers={"Cookie": "mine=1"})
    cookies.set_cookie_header(request)
    assert request.headers.get_list("cookie") == ["mine=1"]


def test_set_cookie_header_is_idempotent() -> None:
    cookies = Cookies({"a": "1"})
    request = Request("GET", "http://example.com/")
    cookies.set_cookie_header(request)
    cookies.set_cookie_header(request)
    assert request.headers.get_list("cookie") == ["a=1"]


def test_extract_cookies_needs_the_request() -> None:
    with pytest.raises(ValueError, match="no request"):
        Cookies().extract_cookies(Response(200, headers={"Set-Cookie": "a=1"}))


def test_response_without_set_cookie_changes_nothing() -> None:
    cookies = Cookies({"a": "1"})
    receive(cookies, "http://example.com/")
    assert dict(cookies) == {"a": "1"}


def test_ipv6_and_localhost_hosts() -> None:
    cookies = Cookies()
    receive(cookies, "http://[::1]:8000/", "six=1")
    receive(cookies, "http://localhost:8000/", "local=1")
    assert sent(cookies, "http://[::1]:8000/") == "six=1"
    assert sent(cookies, "http://localhost/") == "local=1"


def test_request_adapter_answers_as_urllib_would() -> None:
    request = Request("GET", "https://Example.COM:8443/a?b=1", headers={"X-One": "1"})
    adapted = _JarRequest(request)
    assert adapted.get_full_url() == "https://example.com:8443/a?b=1"
    assert (adapted.type, adapted.host, adapted.origin_req_host) == (
        "https",
        "example.com:8443",
        "example.com",
    )
    assert adapted.is_unverifiable() is False
    assert adapted.has_header("x-one")
    assert adapted.get_header("X-One") == "1"
    assert adapted.get_header("Missing", "d") == "d"
    assert adapted.header_items() == [("x-one", "1")]
    adapted.add_unredirected_header("Cookie", "a=1")
    assert request.headers["cookie"] == "a=1"
    assert _JarRequest(Request("GET", "http://[::1]/")).origin_req_host == "[::1]"


# --- the mapping --------------------------------------------------------------------


def test_mapping_interface() -> None:
    cookies = Cookies()
    assert len(cookies) == 0
    assert not cookies
    cookies["a"] = "1"
    cookies.set("b", "2")
    cookies.update({"c": "3"})
    assert cookies["a"] == "1"
    assert cookies.get("b") == "2"
    assert cookies.get("missing") is None
    assert cookies.get("missing", "fallback") == "fallback"
    assert "c" in cookies
    assert "missing" not in cookies
    not_a_name: object = 1
    assert not_a_name not in cookies
    assert list(cookies) == ["a", "b", "c"]
    assert len(cookies) == 3
    assert dict(cookies) == {"a": "1", "b": "2", "c": "3"}
    cookies["a"] = "changed"  # same name, domain and path: replaced
    assert cookies["a"] == "changed"
    assert len(cookies) == 3
    del cookies["a"]
    assert "a" not in cookies
    with pytest.raises(KeyError):
        cookies["a"]
    with pytest.raises(KeyError):
        del cookies["a"]


def test_cookies_set_without_a_domain_go_to_every_host() -> None:
    cookies = Cookies({"a": "1"})
    assert sent(cookies, "http://example.com/") == "a=1"
    assert sent(cookies, "https://other.org/deep/path") == "a=1"


def test_set_with_domain_and_path() -> None:
    cookies = Cookies()
    cookies.set("a", "1", domain="example.com", path="/api")
    assert sent(cookies, "http://example.com/api/x") == "a=1"
    assert sent(cookies, "http://sub.example.com/api") == "a=1"
    assert sent(cookies, "http://example.com/") is None
    assert sent(cookies, "http://other.com/api") is None


def test_set_refuses_values_that_would_break_the_header() -> None:
    cookies = Cookies()
    for name, value in [
        ("a", "1; b=2"),
        ("a", "x\r\nEvil: 1"),
        ("a b", "1"),
        ("", "1"),
        ("a=", "1"),
    ]:
        with pytest.raises(ValueError, match="invalid cookie"):
            cookies.set(name, value)
    with pytest.raises(ValueError, match="path"):
        cookies.set("a", "1", path="api")
    assert len(cookies) == 0


def test_conflicting_names_must_be_narrowed() -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/", "id=1")
    receive(cookies, "http://other.com/", "id=2")
    receive(cookies, "http://other.com/", "same=x")
    receive(cookies, "http://example.com/", "same=x")
    with pytest.raises(CookieConflict, match="domain="):
        cookies["id"]
    with pytest.raises(CookieConflict):
        cookies.get("id")
    assert cookies.get("id", domain="example.com") == "1"
    assert cookies.get("id", domain=".other.com") == "2"  # a leading dot does not matter
    assert cookies["same"] == "x"  # several cookies, one value: no conflict
    assert list(cookies) == ["id", "same"]
    assert "id" in cookies


def test_get_by_path() -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/", "a=root; Path=/", "a=api; Path=/api")
    assert cookies.get("a", path="/api") == "api"
    assert cookies.get("a", path="/") == "root"
    assert cookies.get("a", path="/nope") is None


def test_delete() -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/", "a=1", "b=1")
    receive(cookies, "http://other.com/", "a=2")
    cookies.delete("a", domain="other.com")
    assert cookies["a"] == "1"
    cookies.delete("a")
    assert "a" not in cookies
    cookies.delete("never-set")  # nothing to do, no error
    assert list(cookies) == ["b"]


def test_clear() -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/", "a=1; Path=/", "b=2; Path=/x")
    receive(cookies, "http://www.other.com/", "c=3; Domain=other.com")
    cookies.clear(path="/x")
    assert sorted(cookies) == ["a", "c"]
    cookies.clear(domain="other.com")
    assert list(cookies) == ["a"]
    cookies.clear(domain="example.com", path="/")
    assert len(cookies) == 0
    cookies["z"] = "1"
    cookies.clear()
    assert len(cookies) == 0


def test_repr_names_cookies_but_hides_values() -> None:
    cookies = Cookies({"session": "s3cr3t"})
    receive(cookies, "http://example.com/app/", "theme=dark; Path=/app")
    text = repr(cookies)
    assert "session for */" in text
    assert "theme for example.com/app" in text
    assert "s3cr3t" not in text
    assert "dark" not in text


def test_cookie_without_a_value() -> None:
    cookies = Cookies()
    receive(cookies, "http://example.com/", "flag")
    assert "flag" in cookies


# --- construction --------------------------------------------------------------------


def test_constructor_variants() -> None:
    assert len(Cookies()) == 0
    assert len(Cookies(None)) == 0
    assert dict(Cookies({"a": "1", "b": "2"})) == {"a": "1", "b": "2"}
    assert dict(Cookies([("a", "1"), ("b", "2")])) == {"a": "1", "b": "2"}


def test_constructor_copies_another_cookies() -> None:
    original = Cookies()
    receive(original, "https://example.com/", "s=1; Secure; Path=/p")
    copy = Cookies(original)
    assert copy.jar is not original.jar
    assert dict(copy) == {"s": "1"}
    assert sent(copy, "https://example.com/p") == "s=1"
    assert sent(copy, "http://example.com/p") is None  # attributes come along
    copy["t"] = "2"
    del copy["s"]
    assert dict(original) == {"s": "1"}


def test_constructor_wraps_a_cookie_jar() -> None:
    jar = CookieJar()
    cookies = Cookies(jar)
    assert cookies.jar is jar
    cookies["a"] = "1"
    assert [cookie.name for cookie in jar] == ["a"]


def test_shared_between_threads() -> None:
    cookies = Cookies()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        for i in range(200):
            receive(cookies, f"http://host{n}.example/", f"c{i}=v; Path=/p{i}")

    def reader() -> None:
        try:
            for _ in range(200):
                len(cookies)
                repr(cookies)
                sent(cookies, "http://host0.example/p1")
        except BaseException as exc:  # pragma: no cover - only on failure
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(list(cookies.jar)) == 800
