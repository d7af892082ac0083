"""Unit tests of proxy selection (``hyperpy._core.proxies``): proxy URLs, the proxy
environment variables and NO_PROXY; no IO."""

from __future__ import annotations

import base64

import pytest

from hyperpy._core.proxies import (
    EnvProxies,
    NoProxy,
    Proxy,
    proxies_from_env,
    to_proxy,
)
from hyperpy._exceptions import InvalidURL

# -- Proxy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://proxy.internal:3128", ("http", "proxy.internal", 3128)),
        ("http://proxy.internal", ("http", "proxy.internal", 80)),
        ("https://proxy.internal", ("https", "proxy.internal", 443)),
        ("socks5://proxy.internal", ("socks5", "proxy.internal", 1080)),
        ("socks5h://proxy.internal:9050", ("socks5h", "proxy.internal", 9050)),
        ("HTTP://Proxy.Internal:8080/", ("http", "proxy.internal", 8080)),
        ("http://[::1]:3128", ("http", "::1", 3128)),
        ("http://10.0.0.1", ("http", "10.0.0.1", 80)),
    ],
)
def test_proxy_origin(url: str, origin: tuple[str, str, int]) -> None:
    proxy = Proxy(url)
    assert proxy.origin == origin
    assert (proxy.scheme, proxy.host, proxy.port) == origin
    assert proxy.auth is None
    assert proxy.authorization() is None


def test_proxy_url_is_normalized() -> None:
    assert Proxy("HTTP://Proxy.Internal:8080/").url == "http://proxy.internal:8080"
    assert Proxy("http://[::1]:3128").url == "http://[::1]:3128"
    assert Proxy("socks5h://host").url == "socks5h://host"


def test_is_socks() -> None:
    assert Proxy("socks5://h").is_socks
    assert Proxy("socks5h://h").is_socks
    assert not Proxy("http://h").is_socks
    assert not Proxy("https://h").is_socks


def test_credentials_come_from_the_userinfo_percent_decoded() -> None:
    proxy = Proxy("http://us%20er:p%40ss%3Aword@proxy.internal:3128")
    assert proxy.auth == ("us er", "p@ss:word")
    assert proxy.url == "http://proxy.internal:3128"  # no credentials left in the URL
    token = base64.b64encode(b"us er:p@ss:word")
    assert proxy.authorization() == b"Basic " + token


def test_userinfo_without_password() -> None:
    assert Proxy("http://user@proxy").auth == ("user", "")


def test_non_ascii_credentials_are_utf8() -> None:
    proxy = Proxy("http://j%C3%BCrgen:%E2%82%AC@proxy")
    assert proxy.auth == ("jürgen", "€")
    assert proxy.authorization() == b"Basic " + base64.b64encode("jürgen:€".encode())


def test_explicit_auth_wins_over_the_userinfo() -> None:
    proxy = Proxy("http://a:b@proxy", auth=("c", "d"))
    assert proxy.auth == ("c", "d")
    assert proxy.url == "http://proxy"


def test_password_is_not_in_the_repr() -> None:
    proxy = Proxy("http://user:secret@proxy")
    assert "secret" not in repr(proxy)
    assert "user" in repr(proxy)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://proxy",
        "socks4://proxy",
        "proxy:8080",
        "//proxy:8080",
        "http:proxy",
        "http://",
        "http://:8080",
        "http://proxy:99999",
        "http://proxy:0",
        "http://proxy:port",
        "http://[::1",
        "http://proxy/path",
        "http://proxy/?q",
        "http://proxy/#f",
        "http://pro xy",
        "http://proxy\n.evil",
        "http://proxy\t",
        "",
    ],
)
def test_invalid_proxy_urls(url: str) -> None:
    with pytest.raises(InvalidURL):
        Proxy(url)


@pytest.mark.parametrize("auth", [("user",), ("user", 1), ["user", "pw"], "user:pw"])
def test_invalid_auth(auth: object) -> None:
    with pytest.raises(TypeError):
        Proxy("http://proxy", auth=auth)  # type: ignore[arg-type]


def test_headers_are_copied_and_read_only() -> None:
    given = {"X-Tenant": "a"}
    proxy = Proxy("http://proxy", headers=given)
    given["X-Tenant"] = "b"
    assert proxy.headers == {"X-Tenant": "a"}
    with pytest.raises(TypeError):
        proxy.headers["X-Tenant"] = "c"  # type: ignore[index]
    assert hash(proxy) == hash(Proxy("http://proxy", headers={"X-Other": "b"}))
    assert proxy == Proxy("http://proxy", headers={"X-Tenant": "a"})
    assert proxy != Proxy("http://proxy")


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"X-A": "a\r\nInjected: 1"}, ValueError),
        ({"X-A\n": "a"}, ValueError),
        ({"": "a"}, ValueError),
        ({"X:A": "a"}, ValueError),
        ({"X-A": 1}, TypeError),
    ],
)
def test_invalid_headers(headers: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        Proxy("http://proxy", headers=headers)  # type: ignore[arg-type]


def test_proxy_is_immutable_and_hashable() -> None:
    proxy = Proxy("http://a:b@proxy")
    with pytest.raises(AttributeError):
        proxy.url = "http://other"  # type: ignore[misc]
    assert len({proxy, Proxy("http://a:b@proxy")}) == 1


def test_to_proxy() -> None:
    proxy = Proxy("http://proxy")
    assert to_proxy(None) is None
    assert to_proxy(proxy) is proxy
    assert to_proxy("http://proxy") == proxy
    with pytest.raises(InvalidURL):
        to_proxy("proxy:8080")
    with pytest.raises(TypeError):
        to_proxy(8080)  # type: ignore[arg-type]


def test_url_must_be_a_string() -> None:
    with pytest.raises(TypeError):
        Proxy(b"http://proxy")  # type: ignore[arg-type]


# -- the environment ------------------------------------------------------------------


def test_empty_environment_means_no_proxy() -> None:
    proxies = proxies_from_env({})
    assert proxies == EnvProxies()
    assert proxies.select("http", "example.com", 80) is None
    assert proxies.select("https", "example.com", 443) is None


def test_proxy_per_scheme() -> None:
    proxies = proxies_from_env({"HTTP_PROXY": "http://p1:3128", "HTTPS_PROXY": "http://p2:3128"})
    assert proxies.select("http", "example.com", 80) == Proxy("http://p1:3128")
    assert proxies.select("HTTPS", "example.com", 443) == Proxy("http://p2:3128")
    assert proxies.select("ws", "example.com", 80) == Proxy("http://p1:3128")
    assert proxies.select("wss", "example.com", 443) == Proxy("http://p2:3128")
    assert proxies.select("ftp", "example.com", 21) is None


def test_all_proxy_is_the_fallback() -> None:
    proxies = proxies_from_env({"ALL_PROXY": "socks5h://tor:9050", "https_proxy": "http://p2"})
    assert proxies.select("http", "example.com", 80) == Proxy("socks5h://tor:9050")
    assert proxies.select("https", "example.com", 443) == Proxy("http://p2")
    assert proxies.select("ftp", "example.com", 21) == Proxy("socks5h://tor:9050")


def test_lower_case_wins() -> None:
    environ = {
        "HTTP_PROXY": "http://upper",
        "http_proxy": "http://lower",
        "HTTPS_PROXY": "http://upper-s",
        "all_proxy": "http://lower-all",
        "ALL_PROXY": "http://upper-all",
    }
    proxies = proxies_from_env(environ)
    assert proxies.http == Proxy("http://lower")
    assert proxies.https == Proxy("http://upper-s")
    assert proxies.all == Proxy("http://lower-all")


def test_lower_case_no_proxy_wins() -> None:
    proxies = proxies_from_env({"http_proxy": "http://p", "no_proxy": "a.com", "NO_PROXY": "b.com"})
    assert proxies.select("http", "a.com", 80) is None
    assert proxies.select("http", "b.com", 80) == Proxy("http://p")


def test_empty_values_count_as_unset() -> None:
    proxies = proxies_from_env({"http_proxy": "", "HTTP_PROXY": "http://upper", "no_proxy": " "})
    assert proxies.http == Proxy("http://upper")
    assert proxies.select("http", "x", 80) == Proxy("http://upper")


def test_cgi_ignores_upper_case_http_proxy() -> None:
    """httpoxy: in a CGI script HTTP_PROXY is the request's Proxy header."""
    environ = {
        "REQUEST_METHOD": "GET",
        "HTTP_PROXY": "http://attacker:8080",
        "HTTPS_PROXY": "http://corp:3128",
    }
    proxies = proxies_from_env(environ)
    assert proxies.http is None
    assert proxies.https == Proxy("http://corp:3128")
    assert proxies.select("http", "example.com", 80) is None
    # The lower-case variable cannot come from a request header: still honoured.
    environ["http_proxy"] = "http://corp:3128"
    assert proxies_from_env(environ).http == Proxy("http://corp:3128")


def test_proxy_without_a_scheme_is_http() -> None:
    proxies = proxies_from_env({"HTTPS_PROXY": "user:pw@proxy.internal:3128"})
    assert proxies.https == Proxy("http://proxy.internal:3128", auth=("user", "pw"))
    assert proxies.https is not None and proxies.https.auth == ("user", "pw")


def test_values_are_stripped() -> None:
    assert proxies_from_env({"HTTP_PROXY": "  http://p  "}).http == Proxy("http://p")


def test_malformed_proxy_variable_raises_naming_it() -> None:
    with pytest.raises(InvalidURL, match="HTTPS_PROXY"):
        proxies_from_env({"https_proxy": "ftp://proxy"})


def test_env_proxy_credentials() -> None:
    proxy = proxies_from_env({"HTTP_PROXY": "http://u%3A1:p%2F2@proxy:3128"}).http
    assert proxy is not None
    assert proxy.auth == ("u:1", "p/2")
    assert proxy.url == "http://proxy:3128"


# -- NO_PROXY -------------------------------------------------------------------------


def bypassed(no_proxy: str, host: str, port: int = 80) -> bool:
    proxies = proxies_from_env({"HTTP_PROXY": "http://p", "NO_PROXY": no_proxy})
    direct = proxies.select("http", host, port) is None
    assert direct == NoProxy.parse(no_proxy).matches(host, port)
    return direct


def test_star_disables_every_proxy() -> None:
    assert bypassed("*", "example.com")
    assert bypassed("*", "10.0.0.1", 8080)
    assert bypassed("foo.com, *", "example.com")


@pytest.mark.parametrize("entry", ["example.com", ".example.com", "*.example.com"])
@pytest.mark.parametrize("host", ["example.com", "a.example.com", "b.a.example.com"])
def test_a_domain_matches_itself_and_subdomains(entry: str, host: str) -> None:
    assert bypassed(entry, host)


@pytest.mark.parametrize("host", ["badexample.com", "example.com.evil", "example.org", "com"])
def test_a_domain_does_not_match_lookalikes(host: str) -> None:
    assert not bypassed("example.com", host)
    assert not bypassed(".example.com", host)


def test_matching_is_case_insensitive_and_ignores_trailing_dots() -> None:
    assert bypassed("Example.COM", "a.example.com")
    assert bypassed("example.com", "A.EXAMPLE.COM")
    assert bypassed("example.com.", "a.example.com")
    assert bypassed("example.com", "a.example.com.")


def test_separators() -> None:
    no_proxy = " a.com,b.com  c.com,,\td.com "
    for host in ("a.com", "b.com", "c.com", "d.com"):
        assert bypassed(no_proxy, host)
    assert not bypassed(no_proxy, "e.com")


def test_ip_addresses() -> None:
    assert bypassed("10.1.2.3", "10.1.2.3")
    assert not bypassed("10.1.2.3", "10.1.2.4")
    assert bypassed("::1", "::1")
    assert bypassed("::1", "[::1]")
    assert bypassed("0:0::1", "::1")  # compared as addresses, not text
    assert bypassed("[::1]", "0::1")


def test_cidr_blocks() -> None:
    assert bypassed("10.0.0.0/8", "10.200.3.4")
    assert not bypassed("10.0.0.0/8", "11.0.0.1")
    assert bypassed("192.168.1.7/24", "192.168.1.200")  # host bits are ignored
    assert bypassed("::1/128", "::1")
    assert bypassed("fd00::/8", "[fd12:3456::1]")
    assert not bypassed("fd00::/8", "fe80::1")
    assert not bypassed("10.0.0.0/8", "::ffff:10.0.0.1")
    # Names are not resolved: a CIDR block matches IP-literal hosts only.
    assert not bypassed("127.0.0.0/8", "localhost")


def test_entries_with_a_port_match_only_that_port() -> None:
    assert bypassed("example.com:8080", "example.com", 8080)
    assert bypassed("example.com:8080", "a.example.com", 8080)
    assert not bypassed("example.com:8080", "example.com", 80)
    assert bypassed("[::1]:8080", "::1", 8080)
    assert not bypassed("[::1]:8080", "::1", 8081)
    assert bypassed("10.0.0.1:443", "10.0.0.1", 443)
    assert not bypassed("10.0.0.1:443", "10.0.0.1", 80)


def test_loopback_is_not_special() -> None:
    assert not bypassed("", "localhost")
    assert not bypassed("", "127.0.0.1")
    assert not bypassed("example.com", "::1")
    assert bypassed("localhost,127.0.0.1,::1", "localhost")
    assert bypassed("localhost,127.0.0.1,::1", "127.0.0.1")
    assert bypassed("localhost,127.0.0.1,::1", "::1")


@pytest.mark.parametrize(
    "entry",
    [
        "[::1",
        "[::1]x",
        "example.com:http",
        "example.com:0",
        "example.com:70000",
        "10.0.0.0/33",
        "a*b.com",
        ".",
        "*.",
        "[::1]:",
        "example.com:",
    ],
)
def test_unusable_entries_are_ignored(entry: str) -> None:
    rules = NoProxy.parse(entry + ",kept.com")
    assert len(rules.rules) == 1
    assert rules.matches("kept.com", 80)


def test_no_proxy_without_any_proxy_is_harmless() -> None:
    proxies = proxies_from_env({"NO_PROXY": "example.com"})
    assert proxies.select("http", "example.com", 80) is None
    assert proxies.select("http", "other.com", 80) is None


def test_no_proxy_applies_to_all_proxy_too() -> None:
    proxies = proxies_from_env({"ALL_PROXY": "socks5://s", "NO_PROXY": "internal"})
    assert proxies.select("https", "git.internal", 443) is None
    assert proxies.select("https", "example.com", 443) == Proxy("socks5://s")
