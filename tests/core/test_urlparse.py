"""Unit tests of URL parsing, encoding and joining (``hyperpy._urlparse`` and ``URL``)."""

from __future__ import annotations

import random

import pytest

from hyperpy import URL, InvalidURL
from hyperpy._urlparse import (
    build_url,
    encode_query,
    join_url,
    merge_query,
    parse_url,
    resolve_reference,
)


def full(url: URL) -> str:
    """``str(url)`` plus the fragment, which ``str`` leaves out."""
    return f"{url}#{url.fragment}" if url.fragment else str(url)


# Percent-encoding


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("http://h/café", "/caf%C3%A9"),
        ("http://h/a b/c  d", "/a%20b/c%20%20d"),
        ("http://h/%2F/a%2fb", "/%2F/a%2fb"),  # valid escapes kept as they are
        ("http://h/caf%C3%A9", "/caf%C3%A9"),  # never double-encoded
        ("http://h/100%", "/100%25"),  # a lone "%" is not an escape
        ("http://h/%zz%4", "/%25zz%254"),
        ('http://h/a"b<c>{d}|^`', "/a%22b%3Cc%3E%7Bd%7D%7C%5E%60"),
        ("http://h/a\\b", "/a%5Cb"),
        ("http://h/~a-b_c.d!$&'()*+,;=:@", "/~a-b_c.d!$&'()*+,;=:@"),
        ("http://h/\u00a0\u3000", "/%C2%A0%E3%80%80"),  # non-ASCII spaces are just characters
        ("http://h/😀", "/%F0%9F%98%80"),
        ("http://h", "/"),
        ("http://h?q", "/"),
    ],
)
def test_path_encoding(text: str, path: str) -> None:
    assert parse_url(text).path == path


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("http://h/?a=1&b=x+y", "a=1&b=x+y"),  # "+", "=", "&" keep their meaning
        ("http://h/?q=é", "q=%C3%A9"),
        ("http://h/?q=a b&c=d", "q=a%20b&c=d"),
        ("http://h/?q=%20%2B", "q=%20%2B"),
        ("http://h/?a=[1]&b=/?:@", "a=%5B1%5D&b=/?:@"),
        ("http://h/?", ""),
        ("http://h/?a=b#c", "a=b"),
    ],
)
def test_query_encoding(text: str, query: str) -> None:
    assert parse_url(text).query == query


def test_spaces_in_given_parts_are_encoded() -> None:
    assert encode_query("q=a b&c=d") == "q=a%20b&c=d"
    assert URL("http://h/").copy_with(path="/a b/ü", query="x=1 2").target == (
        "/a%20b/%C3%BC?x=1%202"
    )


def test_plain_ascii_is_returned_unchanged() -> None:
    text = "http://example.com:8080/a/b;c=d/e.txt?x=1&y=%2F#top"
    parsed = parse_url(text)
    assert (parsed.path, parsed.query, parsed.fragment) == ("/a/b;c=d/e.txt", "x=1&y=%2F", "top")


# Dot-segments


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("http://h/a/b/c/./../../g", "/a/g"),
        ("http://h/a/b/..", "/a/"),
        ("http://h/a/b/.", "/a/b/"),
        ("http://h/..", "/"),
        ("http://h/../../x", "/x"),
        ("http://h/a//b/../c", "/a//c"),
        ("http://h/.hidden/..x/x..", "/.hidden/..x/x.."),
        ("http://h/a/%2e%2e/b", "/a/%2e%2e/b"),  # escaped dots are data, not segments
        ("http://h/a/..?x=/../", "/"),
    ],
)
def test_dot_segments_are_removed(text: str, path: str) -> None:
    assert parse_url(text).path == path


# Authority: scheme, userinfo, host, port


def test_scheme_and_host_are_lowercased_and_ports_parsed() -> None:
    parsed = parse_url("HTTPS://Example.COM:8443/X")
    assert (parsed.scheme, parsed.host, parsed.port, parsed.path) == (
        "https",
        "example.com",
        8443,
        "/X",
    )
    assert parse_url("http://h/").port is None
    assert parse_url("http://h:/").port is None
    assert parse_url("http://h:0/").port == 0
    assert parse_url("http://h:65535/").port == 65535


def test_userinfo_is_decoded() -> None:
    parsed = parse_url("http://us%40er:p%3Ass@h/")
    assert (parsed.username, parsed.password, parsed.host) == ("us@er", "p:ss", "h")
    assert parse_url("http://user@h/")[1:3] == ("user", None)
    assert parse_url("http://user:@h/")[1:3] == ("user", "")
    assert parse_url("http://h/")[1:3] == (None, None)
    # The last "@" ends the userinfo, as browsers read it.
    assert parse_url("http://a@b@c/")[1:4] == ("a@b", None, "c")


def test_idna_hosts_become_a_labels() -> None:
    assert parse_url("http://bücher.example/").host == "xn--bcher-kva.example"
    assert parse_url("http://BÜCHER.example/").host == "xn--bcher-kva.example"
    fullwidth = "\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45"  # "example", UTS 46 maps it
    assert parse_url(f"http://{fullwidth}.com/").host == "example.com"
    assert parse_url("http://xn--bcher-kva.example/").host == "xn--bcher-kva.example"
    url = URL("http://bücher.example:8080/")
    assert url.authority == "xn--bcher-kva.example:8080"
    assert url.authority.isascii()


def test_ip_literals() -> None:
    parsed = parse_url("http://[::1]:8080/")
    assert (parsed.host, parsed.port) == ("::1", 8080)
    assert parse_url("http://[2001:DB8:0:0::1]/").host == "2001:db8::1"
    assert parse_url("http://127.0.0.1:80/").host == "127.0.0.1"
    url = URL("http://[::1]:8080/x")
    assert (url.authority, str(url), url.origin) == (
        "[::1]:8080",
        "http://[::1]:8080/x",
        ("http", "::1", 8080),
    )
    assert str(URL("https://[::1]/")) == "https://[::1]/"


def test_hostname_edge_cases_that_are_valid() -> None:
    assert parse_url("http://my_service:8000/").host == "my_service"
    assert parse_url("http://example.com./").host == "example.com."
    assert parse_url("http://" + "a" * 63 + ".com/").host == "a" * 63 + ".com"
    long_host = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 characters
    assert parse_url(f"http://{long_host}/").host == long_host
    assert parse_url("http://0xygen.example/").host == "0xygen.example"


# Invalid input


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ftp://h/", "unsupported scheme 'ftp'"),
        ("mailto:a@b", "unsupported scheme"),
        ("h/x", "missing scheme"),
        ("/x", "missing scheme"),
        ("", "missing scheme"),
        ("example.com:8080/x", "unsupported scheme"),
        ("http:x", "missing host"),
        ("http:/x", "missing host"),
        ("http:///x", "missing host"),
        ("http://", "missing host"),
        ("http://user@/x", "missing host"),
        ("http://:80/", "missing host"),
        ("http://h:99999/", "invalid port"),
        ("http://h:65536/", "invalid port"),
        ("http://h:-1/", "invalid port"),
        ("http://h:8o/", "invalid port"),
        ("http://h:\uff18\uff10/", "invalid port"),  # fullwidth digits
        ("http://h:1:2/", "must be in [brackets]"),
        ("http://h:0000080/", "invalid port"),
        ("http://☃.net/", "invalid IDNA host"),
        ("http://xn--zz.example/", "invalid IDNA host"),
        ("http://-bücher.example/", "invalid IDNA host"),
        (" http://h/", "leading or trailing whitespace"),
        ("http://h/x ", "leading or trailing whitespace"),
        ("ht tp://h/", "missing scheme"),
        ("http://u ser@h/", "whitespace in the authority"),
        ("http://h :80/", "whitespace in the authority"),
        ("http://h/\t", "control character or whitespace"),
        ("http://h/\nx", "control character or whitespace"),
        ("http://h/\r\n", "control character or whitespace"),
        ("http://h/\x00", "control character or whitespace"),
        ("http://h/\x7f", "control character or whitespace"),
        ("http://h/ü\x01", "control character or whitespace"),
        ("http://h/\ud800", "lone surrogate"),
        ("http://[::1/", "malformed IPv6"),
        ("http://[::g]/", "malformed IPv6"),
        ("http://[::1]x/", "malformed IPv6"),
        ("http://[fe80::1%25eth0]/", "malformed IPv6"),
        ("http://[1.2.3.4]/", "malformed IPv6"),
        ("http://::1/", "IPv6 address must be in [brackets]"),
        ("http://" + "a" * 64 + ".com/", "label is too long"),
        ("http://" + "a." * 127 + "ab/", "host is too long"),
        ("http://256.1.1.1/", "invalid IPv4"),
        ("http://127.1/", "invalid IPv4"),
        ("http://0x7f000001/", "invalid IPv4"),
        ("http://01.2.3.4/", "invalid IPv4"),
        ("http://2130706433/", "invalid IPv4"),
        ("http://a..b/", "empty label"),
        ("http://.a/", "empty label"),
        ("http://./", "empty label"),
        ("http://h%41/", "invalid character '%' in host"),
        ("http://exa mple.org/", "whitespace in the authority"),
        ("http://h]/", "invalid character"),
        ("http://evil\\@good/", "backslash"),
    ],
)
def test_invalid_urls(text: str, reason: str) -> None:
    with pytest.raises(InvalidURL) as info:
        parse_url(text)
    message = str(info.value)
    assert reason in message
    if "@" not in text:  # (credentials are hidden: see below)
        assert repr(text)[:20] in message  # the message names the URL (a long one cut short)
    with pytest.raises(InvalidURL):
        URL(text)


def test_error_messages_hide_credentials_and_stay_short() -> None:
    with pytest.raises(InvalidURL) as info:
        parse_url("http://user:s3cret@h:99999/")
    assert "s3cret" not in str(info.value)
    assert "'http://***@h:99999/'" in str(info.value)
    with pytest.raises(InvalidURL) as info:
        parse_url("ftp://h/" + "x" * 10_000)
    assert len(str(info.value)) < 300


def test_non_str_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_url(b"http://h/")  # type: ignore[arg-type]


def test_random_strings_raise_only_invalid_url() -> None:
    rng = random.Random(20240607)
    pieces = [
        *"abcXYZ019-._~!$&'()*+,;=:@/?#[]%\\\"<>^`{|} \t\r\n\x00\x7f",
        "http://",
        "https://",
        "//",
        "%2F",
        "%",
        "..",
        "ü",
        "☃",
        "\uff45",  # fullwidth e
        "\u00ad",
        "\u200d",
        "xn--",
        "[::1]",
        "\ud800",
        "\U0001f600",
        "0x",
        "255.",
        "\u0661",  # Arabic-Indic digit one
    ]
    base = URL("http://u:p@a/b/c/d;p?q#f")
    outcomes = {"ok": 0, "invalid": 0}
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 24)))
        if rng.random() < 0.5:
            text = rng.choice(["http://", "https://", "HTTP://"]) + text
        for parse in (URL, base.join):
            try:
                url = parse(text)
            except InvalidURL:
                outcomes["invalid"] += 1
            else:
                outcomes["ok"] += 1
                # What parses is wire-ready and stable under re-parsing.
                assert str(url).isascii()
                assert URL(str(url)) == url.copy_with(username="", password="", fragment="")
    assert outcomes["ok"] > 500 and outcomes["invalid"] > 500


# Base URL joining (a client's base_url)


@pytest.mark.parametrize("base", ["http://h/api/v1", "http://h/api/v1/", "http://h/api/v1?k=1#f"])
@pytest.mark.parametrize(
    ("url", "joined"),
    [
        ("/users", "http://h/api/v1/users"),
        ("users", "http://h/api/v1/users"),
        ("users?x=1", "http://h/api/v1/users?x=1"),
        ("/users/1?x=1#top", "http://h/api/v1/users/1?x=1#top"),
        ("", "http://h/api/v1/"),
        ("//other/x", "http://h/api/v1/other/x"),  # never switches host
        ("https://other/x", "https://other/x"),  # absolute: unchanged
    ],
)
def test_join_url(base: str, url: str, joined: str) -> None:
    assert join_url(base, url) == joined


def test_join_url_with_a_bare_host_base() -> None:
    assert join_url("http://h", "/x") == "http://h/x"
    assert join_url("http://h/", "x") == "http://h/x"
    assert URL(join_url("http://u:p@h/api/", "/x")).username == "u"


# URL.join: RFC 3986 §5.4 reference resolution

RFC_BASE = "http://a/b/c/d;p?q"


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        # §5.4.1 normal examples ("g:h" -> "g:h" is not http: see below)
        ("g", "http://a/b/c/g"),
        ("./g", "http://a/b/c/g"),
        ("g/", "http://a/b/c/g/"),
        ("/g", "http://a/g"),
        ("//g", "http://g/"),
        ("?y", "http://a/b/c/d;p?y"),
        ("g?y", "http://a/b/c/g?y"),
        ("#s", "http://a/b/c/d;p?q#s"),
        ("g#s", "http://a/b/c/g#s"),
        ("g?y#s", "http://a/b/c/g?y#s"),
        (";x", "http://a/b/c/;x"),
        ("g;x", "http://a/b/c/g;x"),
        ("g;x?y#s", "http://a/b/c/g;x?y#s"),
        ("", "http://a/b/c/d;p?q"),
        (".", "http://a/b/c/"),
        ("./", "http://a/b/c/"),
        ("..", "http://a/b/"),
        ("../", "http://a/b/"),
        ("../g", "http://a/b/g"),
        ("../..", "http://a/"),
        ("../../", "http://a/"),
        ("../../g", "http://a/g"),
        # §5.4.2 abnormal examples
        ("../../../g", "http://a/g"),
        ("../../../../g", "http://a/g"),
        ("/./g", "http://a/g"),
        ("/../g", "http://a/g"),
        ("g.", "http://a/b/c/g."),
        (".g", "http://a/b/c/.g"),
        ("g..", "http://a/b/c/g.."),
        ("..g", "http://a/b/c/..g"),
        ("./../g", "http://a/b/g"),
        ("./g/.", "http://a/b/c/g/"),
        ("g/./h", "http://a/b/c/g/h"),
        ("g/../h", "http://a/b/c/h"),
        ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
        ("g;x=1/../y", "http://a/b/c/y"),
        ("g?y/./x", "http://a/b/c/g?y/./x"),
        ("g?y/../x", "http://a/b/c/g?y/../x"),
        ("g#s/./x", "http://a/b/c/g#s/./x"),
        ("g#s/../x", "http://a/b/c/g#s/../x"),
        # absolute and non-ASCII references
        ("https://other:8443/x?y", "https://other:8443/x?y"),
        ("HTTP://A/B", "http://a/B"),
        ("/café?q=ü", "http://a/caf%C3%A9?q=%C3%BC"),
        ("a b?c d", "http://a/b/c/a%20b?c%20d"),
    ],
)
def test_url_join_rfc3986_examples(relative: str, expected: str) -> None:
    assert full(URL(RFC_BASE).join(relative)) == expected


@pytest.mark.parametrize(
    "relative", ["g:h", "http:g", "ftp://x/", "//", "/a\tb", "//[::1/", "// x/"]
)
def test_url_join_to_something_unrequestable_is_invalid(relative: str) -> None:
    with pytest.raises(InvalidURL):
        URL(RFC_BASE).join(relative)


def test_url_join_fragment_is_inherited_unless_given() -> None:
    base = URL("http://a/b/c#frag")
    assert base.join("/x").fragment == "frag"
    assert base.join("//other/x").fragment == "frag"
    assert base.join("/x#new").fragment == "new"
    assert base.join("/x#").fragment == ""
    assert URL("http://a/b").join("/x").fragment == ""


def test_url_join_keeps_credentials_only_with_the_authority() -> None:
    base = URL("http://u:p@a:8080/b/c")
    same = base.join("d")
    assert (same.username, same.password, str(same)) == ("u", "p", "http://a:8080/b/d")
    other = base.join("//other/x")
    assert (other.username, other.password, str(other)) == ("", "", "http://other/x")


def test_resolve_reference_is_strict_rfc3986() -> None:
    assert resolve_reference(RFC_BASE, "g:h") == "g:h"
    assert resolve_reference(RFC_BASE, "http:g") == "http:g"
    assert resolve_reference(RFC_BASE, "../g#s") == "http://a/b/g#s"


# The URL class


def test_url_attributes() -> None:
    url = URL("https://us%40er:p%3Ass@Bücher.Example/a/./b?x=1#frag")
    assert url.scheme == "https"
    assert (url.username, url.password) == ("us@er", "p:ss")
    assert (url.host, url.port, url.is_default_port) == ("xn--bcher-kva.example", 443, True)
    assert (url.path, url.query, url.fragment, url.target) == ("/a/b", "x=1", "frag", "/a/b?x=1")
    assert url.origin == ("https", "xn--bcher-kva.example", 443)
    assert url.authority == "xn--bcher-kva.example"
    # Credentials and the fragment never reach the wire or a log line.
    assert str(url) == "https://xn--bcher-kva.example/a/b?x=1"
    assert "p:ss" not in repr(url) and "frag" not in repr(url)


def test_url_defaults_when_parts_are_absent() -> None:
    url = URL("http://h:8080")
    assert (url.username, url.password, url.query, url.fragment) == ("", "", "", "")
    assert (url.port, url.is_default_port, url.authority) == (8080, False, "h:8080")
    assert (url.path, url.target, str(url)) == ("/", "/", "http://h:8080/")
    explicit_default = URL("http://h:80/x")
    assert (explicit_default.is_default_port, str(explicit_default)) == (True, "http://h/x")


def test_url_copy_equality_and_hash() -> None:
    url = URL("http://u:p@h/x?y#z")
    copy = URL(url)
    assert copy == url and hash(copy) == hash(url)
    assert (copy.username, copy.password, copy.fragment, copy.target) == ("u", "p", "z", "/x?y")
    assert URL("HTTP://H:80/a/../x") == "http://h/x"
    assert URL("http://h/x") != URL("http://u@h/x")  # credentials count
    assert URL("http://h/x") != URL("http://h/x#f")  # and so does the fragment
    assert URL("http://h/x") != "not a url"
    assert URL("http://h/x") != 3
    assert len({URL("http://h/"), URL("http://h"), URL("http://H:80/")}) == 1


def test_url_copy_with() -> None:
    url = URL("http://u:p@h/x?y#z")
    assert str(url.copy_with(scheme="https")) == "https://h/x?y"
    assert url.copy_with(scheme="https").port == 443
    assert str(url.copy_with(port=8080)) == "http://h:8080/x?y"
    assert str(url.copy_with(host="bücher.example")) == "http://xn--bcher-kva.example/x?y"
    assert str(url.copy_with(host="::1")) == "http://[::1]/x?y"
    assert url.copy_with(path="/a?b#c").target == "/a%3Fb%23c?y"
    assert url.copy_with(query="").target == "/x"
    assert url.copy_with(query="a=1#2").query == "a=1%232"
    cleared = url.copy_with(username="", password="", fragment="")
    assert (cleared.username, cleared.password, cleared.fragment) == ("", "", "")
    odd = url.copy_with(username="a@b:c", password="p@ss:w%rd")
    assert (odd.username, odd.password) == ("a@b:c", "p@ss:w%rd")
    assert url.copy_with(path="rel").path == "/rel"
    with pytest.raises(InvalidURL):
        url.copy_with(scheme="ftp")
    with pytest.raises(InvalidURL):
        url.copy_with(port=70000)


def test_build_url_round_trips() -> None:
    text = build_url("http", "h", 81, "/a b", "q=1", "f", username="u:s", password="p@")
    assert text == "http://u%3As:p%40@h:81/a%20b?q=1#f"
    assert parse_url(text)[1:3] == ("u:s", "p@")


# Query parameters


def test_encode_query() -> None:
    assert encode_query({"a": "1", "b": "x y&z", "c": "é/+"}) == "a=1&b=x+y%26z&c=%C3%A9%2F%2B"
    assert encode_query({"n": 1, "f": 1.5, "t": True, "no": False, "none": None}) == (
        "n=1&f=1.5&t=true&no=false&none="
    )
    assert encode_query({"k": [1, "two", None], "e": []}) == "k=1&k=two&k="
    assert encode_query({"k": ("a", "b")}) == "k=a&k=b"
    assert encode_query([("a", 1), ("a", 2), ("b", ["c", "d"])]) == "a=1&a=2&b=c&b=d"
    assert encode_query({}) == ""
    assert encode_query("q=raw%20string&x=a+b") == "q=raw%20string&x=a+b"
    assert encode_query("q=é") == "q=%C3%A9"
    with pytest.raises(TypeError):
        encode_query({"a": object()})  # type: ignore[dict-item]


def test_merge_query() -> None:
    assert merge_query("", "a=1") == "a=1"
    assert merge_query("x=0", "") == "x=0"
    assert merge_query("x=0", "a=1") == "x=0&a=1"
    assert merge_query("x=0&", "a=1") == "x=0&a=1"
