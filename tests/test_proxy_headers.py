"""ProxyHeaders: forwarded client, scheme, host and port, applied only from trusted peers."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import hyperpy
from hyperpy import URL, Request, Response
from hyperpy.proxy_headers import ProxyHeaders

Call = Callable[[Request], Awaitable[Request]]
Build = Callable[..., Call]

PROXY = ("127.0.0.1", 50000)


def make_request(
    *headers: tuple[str, str],
    url: str = "http://app.internal:8000/p?q=1",
    client: tuple[str, int] | None = PROXY,
) -> Request:
    """A request as the server hands it over: Host from the URL, then ``headers``."""
    return Request("GET", url, headers=[("host", URL(url).authority), *headers], client=client)


@pytest.fixture(params=["sync", "async"])
def build(request: pytest.FixtureRequest) -> Build:
    """Wraps a recording app, sync or async, and returns an awaitable that calls the
    wrapper and gives back the request the app saw."""

    def make(**options: Any) -> Call:
        seen: list[Request] = []
        if request.param == "sync":

            def sync_app(req: Request) -> Response:
                seen.append(req)
                return Response(204)

            sync_wrapper = ProxyHeaders(sync_app, **options)
            assert not inspect.iscoroutinefunction(sync_wrapper.__call__)

            async def call_sync(req: Request) -> Request:
                assert sync_wrapper(req).status == 204
                return seen[-1]

            return call_sync

        async def async_app(req: Request) -> Response:
            seen.append(req)
            return Response(204)

        async_wrapper = ProxyHeaders(async_app, **options)
        assert inspect.iscoroutinefunction(async_wrapper.__call__)

        async def call_async(req: Request) -> Request:
            assert (await async_wrapper(req)).status == 204
            return seen[-1]

        return call_async

    return make


def snapshot(req: Request) -> tuple[Any, ...]:
    return (req.client, str(req.url), req.headers.multi_items())


# -- whom to trust ----------------------------------------------------------------------


async def test_untrusted_peer_changes_nothing(build: Build) -> None:
    call = build(trusted="127.0.0.1")
    req = make_request(
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "example.com"),
        ("forwarded", "for=198.51.100.1;proto=https"),
        client=("192.0.2.10", 4000),
    )
    before = snapshot(req)
    seen = await call(req)
    assert seen is req
    # The headers stay for the app to see; none is applied.
    assert snapshot(seen) == before


async def test_trusted_peer_applies_x_forwarded(build: Build) -> None:
    req = make_request(
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "example.com"),
    )
    seen = await build()(req)
    assert seen.client == ("203.0.113.9", 0)
    assert str(seen.url) == "https://example.com/p?q=1"
    assert seen.scheme == "https" and seen.url.port == 443
    assert seen.headers["host"] == "example.com"
    assert seen.headers["x-forwarded-for"] == "203.0.113.9"  # left in place


@pytest.mark.parametrize(
    ("trusted", "peer", "applied"),
    [
        ("10.0.0.0/8", "10.20.30.40", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("192.168.1.5/24", "192.168.1.77", True),  # host bits set: the network meant
        (["127.0.0.1", "10.0.0.0/8"], "10.1.1.1", True),
        ("127.0.0.1, 10.0.0.0/8", "10.1.1.1", True),
        ("2001:db8::/32", "2001:db8:1::5", True),
        ("2001:db8::/32", "2001:db9::5", False),
        ("::1", "::1", True),
        ("127.0.0.1", "::ffff:127.0.0.1", True),  # IPv4 peer on a dual-stack socket
        ("127.0.0.1", "::1", False),
        ("127.0.0.1", "::ffff:10.0.0.1", False),
        ("*", "198.51.100.200", True),
        ("*", "2001:db8::1", True),
        ("", "127.0.0.1", False),
        ([], "127.0.0.1", False),
        ("127.0.0.1", "not-an-ip", False),
    ],
)
async def test_trusted_addresses_and_networks(
    build: Build, trusted: str | list[str], peer: str, applied: bool
) -> None:
    req = make_request(("x-forwarded-for", "203.0.113.9"), client=(peer, 1234))
    seen = await build(trusted=trusted)(req)
    assert seen.client == (("203.0.113.9", 0) if applied else (peer, 1234))


@pytest.mark.parametrize(
    ("trusted", "client", "applied"),
    [
        ("unix", None, True),
        ("unix", ("", 0), True),
        ("unix", ("/run/app.sock", 0), True),
        ("unix", ("127.0.0.1", 5000), False),
        ("127.0.0.1", ("", 0), False),
        ("127.0.0.1", None, False),
        ("*", None, True),
        ("unix,10.0.0.0/8", ("10.0.0.1", 5000), True),
    ],
)
async def test_unix_socket_peers(
    build: Build, trusted: str, client: tuple[str, int] | None, applied: bool
) -> None:
    req = make_request(("x-forwarded-proto", "https"), client=client)
    seen = await build(trusted=trusted)(req)
    assert seen.scheme == ("https" if applied else "http")


@pytest.mark.parametrize("entry", ["localhost", "10.0.0.0/33", "1.2.3", "unix:/x", "fe80::/1x"])
def test_invalid_trusted_entry_raises(entry: str) -> None:
    with pytest.raises(ValueError, match="trusted"):
        ProxyHeaders(lambda request: Response(), trusted=f"127.0.0.1,{entry}")


# -- the client ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "client"),
    [
        # A client prepends fake entries; the proxies append: the rightmost untrusted wins.
        (["6.6.6.6, 7.7.7.7, 203.0.113.9, 10.0.0.2"], ("203.0.113.9", 0)),
        (["6.6.6.6", "203.0.113.9, 10.0.0.2"], ("203.0.113.9", 0)),  # several fields
        (["127.0.0.1, 203.0.113.9"], ("203.0.113.9", 0)),
        # Every entry a trusted proxy: the leftmost.
        (["10.0.0.3, 10.0.0.2"], ("10.0.0.3", 0)),
        # Ports and IPv6, bare or bracketed, normalised.
        (["203.0.113.9:4711"], ("203.0.113.9", 4711)),
        (["2001:DB8:0:0::1"], ("2001:db8::1", 0)),
        (["[2001:db8::1]:4711, 10.0.0.2"], ("2001:db8::1", 4711)),
        ([" 203.0.113.9 ,, "], ("203.0.113.9", 0)),  # empty list members are skipped
        (["unknown"], None),
        (["_hidden, 10.0.0.2"], ("_hidden", 0)),
    ],
)
async def test_x_forwarded_for_rightmost_untrusted(
    build: Build, fields: list[str], client: tuple[str, int] | None
) -> None:
    req = make_request(*[("x-forwarded-for", field) for field in fields])
    seen = await build(trusted="127.0.0.1, 10.0.0.0/8")(req)
    assert seen.client == client


async def test_trust_everyone_takes_the_leftmost(build: Build) -> None:
    req = make_request(("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.0.0.2"))
    seen = await build(trusted="*")(req)
    assert seen.client == ("198.51.100.1", 0)


async def test_trusted_ipv6_proxy_chain(build: Build) -> None:
    req = make_request(
        ("x-forwarded-for", "2001:db8:bad::1, 2001:db8:beef::9, 2001:db8::2"),
        client=("2001:db8::1", 443),
    )
    seen = await build(trusted="2001:db8::/64")(req)
    assert seen.client == ("2001:db8:beef::9", 0)


# -- Forwarded (RFC 7239) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "client", "url"),
    [
        (
            ["for=192.0.2.60;proto=https;by=203.0.113.43;host=example.com"],
            ("192.0.2.60", 0),
            "https://example.com/p?q=1",
        ),
        (['for="[2001:db8:cafe::17]:4711"'], ("2001:db8:cafe::17", 4711), None),
        (['for="192.0.2.43:4711";proto=http'], ("192.0.2.43", 4711), None),
        (["For=192.0.2.60;PROTO=HTTPS"], ("192.0.2.60", 0), "https://app.internal:8000/p?q=1"),
        (['for="\\192.0.2.60"'], ("192.0.2.60", 0), None),  # a quoted-pair
        (["for=[2001:db8::17]"], ("2001:db8::17", 0), None),  # unquoted, though it should be
        (["for=unknown;proto=https"], None, "https://app.internal:8000/p?q=1"),
        (["for=_gazonk"], ("_gazonk", 0), None),
        (['for="_hidden:_port"'], ("_hidden", 0), None),
        # Several elements: the rightmost untrusted chosen, its proto and host used.
        (
            [
                "for=6.6.6.6;proto=http;host=evil.example, "
                "for=198.51.100.17;proto=https;host=example.com, "
                "for=10.0.0.2;proto=http;host=internal.example"
            ],
            ("198.51.100.17", 0),
            "https://example.com/p?q=1",
        ),
        # ... across several fields, with empty elements and odd spacing.
        (
            ["for=6.6.6.6", ' ,for=198.51.100.17 ;host="example.com:8443" , ', "for=10.0.0.2"],
            ("198.51.100.17", 0),
            "http://example.com:8443/p?q=1",
        ),
        # Every element trusted: the leftmost.
        (
            ["for=10.0.0.3;proto=https, for=10.0.0.2"],
            ("10.0.0.3", 0),
            "https://app.internal:8000/p?q=1",
        ),
    ],
)
async def test_forwarded(
    build: Build, fields: list[str], client: tuple[str, int] | None, url: str | None
) -> None:
    req = make_request(*[("forwarded", field) for field in fields])
    seen = await build(trusted="127.0.0.1, 10.0.0.0/8")(req)
    assert seen.client == client
    assert str(seen.url) == (url or "http://app.internal:8000/p?q=1")


async def test_forwarded_wins_over_x_forwarded(build: Build) -> None:
    req = make_request(
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "x.example"),
        ("forwarded", "for=198.51.100.17;proto=https;host=f.example"),
    )
    seen = await build()(req)
    assert seen.client == ("198.51.100.17", 0)
    assert str(seen.url) == "https://f.example/p?q=1"


async def test_items_forwarded_leaves_out_come_from_x_forwarded(build: Build) -> None:
    req = make_request(
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-host", "x.example"),
        ("forwarded", "proto=https"),
    )
    seen = await build()(req)
    assert seen.client == ("203.0.113.9", 0)
    assert str(seen.url) == "https://x.example/p?q=1"


async def test_use_forwarded_false_ignores_forwarded(build: Build) -> None:
    req = make_request(
        ("forwarded", "for=198.51.100.17;proto=https"),
        ("x-forwarded-for", "203.0.113.9"),
    )
    seen = await build(use_forwarded=False)(req)
    assert seen.client == ("203.0.113.9", 0)
    assert seen.scheme == "http"


async def test_unclosed_quote_cannot_hide_the_proxys_element(build: Build) -> None:
    # The proxy appended its element to the client's field: the unclosed quote
    # swallows it. Falling back to X-Forwarded-For would believe the client.
    req = make_request(
        ("forwarded", 'for="6.6.6.6, for=203.0.113.9'),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
    )
    before = snapshot(req)
    seen = await build()(req)
    assert snapshot(seen) == before


async def test_malformed_field_left_of_the_chosen_element_is_not_reached(build: Build) -> None:
    req = make_request(("forwarded", 'for="6.6.6.6'), ("forwarded", "for=203.0.113.9"))
    seen = await build()(req)
    assert seen.client == ("203.0.113.9", 0)


# -- scheme, host and port ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "proto", "expected"),
    [
        ("http://app/", "https", "https://app:443/"),  # a default port follows the scheme
        ("https://app/", "http", "http://app:80/"),
        ("http://app:8000/", "https", "https://app:8000/"),  # an explicit port stays
        ("http://app/", "wss", "https://app:443/"),
        ("https://app/", "ws", "http://app:80/"),
        ("http://app/", "HTTPS", "https://app:443/"),
        ("http://app/", "ftp", "http://app:80/"),  # not a scheme we serve: ignored
        ("http://app/", "https, http", "http://app:80/"),  # a list X-Forwarded-For can't align
    ],
)
async def test_scheme(build: Build, url: str, proto: str, expected: str) -> None:
    seen = await build()(make_request(("x-forwarded-proto", proto), url=url))
    assert f"{seen.url.scheme}://{seen.url.host}:{seen.url.port}{seen.url.path}" == expected
    assert seen.headers["host"] == URL(url).authority  # the host did not move


@pytest.mark.parametrize(
    ("headers", "url", "host_header"),
    [
        ([("x-forwarded-host", "Example.COM")], "http://example.com/p?q=1", "example.com"),
        (
            [("x-forwarded-host", "example.com:8443")],
            "http://example.com:8443/p?q=1",
            "example.com:8443",
        ),
        (
            [("x-forwarded-host", "[2001:db8::1]:8443")],
            "http://[2001:db8::1]:8443/p?q=1",
            "[2001:db8::1]:8443",
        ),
        (
            [("x-forwarded-host", "example.com"), ("x-forwarded-proto", "https")],
            "https://example.com/p?q=1",
            "example.com",
        ),
        (
            [("x-forwarded-host", "example.com"), ("x-forwarded-port", "8443")],
            "http://example.com:8443/p?q=1",
            "example.com:8443",
        ),
        # A port in the host wins over X-Forwarded-Port.
        (
            [("forwarded", 'host="example.com:9000"'), ("x-forwarded-port", "8443")],
            "http://example.com:9000/p?q=1",
            "example.com:9000",
        ),
        # X-Forwarded-Port alone moves the port of the host the request named.
        (
            [("x-forwarded-port", "443"), ("x-forwarded-proto", "https")],
            "https://app.internal/p?q=1",
            "app.internal",
        ),
        (
            [("x-forwarded-port", "9000")],
            "http://app.internal:9000/p?q=1",
            "app.internal:9000",
        ),
    ],
)
async def test_host_and_port(
    build: Build, headers: list[tuple[str, str]], url: str, host_header: str
) -> None:
    seen = await build()(make_request(*headers))
    assert str(seen.url) == url
    assert seen.headers["host"] == host_header
    assert seen.headers.get_list("host") == [host_header]


async def test_x_forwarded_lists_aligned_with_x_forwarded_for(build: Build) -> None:
    # Each proxy appended to each list: the entries matching the chosen client count.
    req = make_request(
        ("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2"),
        ("x-forwarded-proto", "http, https, http"),
        ("x-forwarded-host", "evil.example, example.com, internal.example"),
        ("x-forwarded-port", "1, 8443, 80"),
    )
    seen = await build(trusted="127.0.0.1, 10.0.0.0/8")(req)
    assert seen.client == ("203.0.113.9", 0)
    assert str(seen.url) == "https://example.com:8443/p?q=1"


# -- malformed input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        ("x-forwarded-for", "not-an-ip"),
        ("x-forwarded-for", "203.0.113.9:99999"),
        ("x-forwarded-for", "203.0.113.9:0"),
        ("x-forwarded-for", "203.0.113.9:"),
        ("x-forwarded-for", "01.2.3.4"),
        ("x-forwarded-for", "[2001:db8::1"),
        ("x-forwarded-for", "[203.0.113.9]"),
        ("x-forwarded-for", "[2001:db8::1]x"),
        ("x-forwarded-for", "2001:db8::zz"),
        ("x-forwarded-for", "1" * 5000),
        ("x-forwarded-proto", "ftp"),
        ("x-forwarded-proto", ""),
        ("x-forwarded-host", "evil.example/path"),
        ("x-forwarded-host", "user@evil.example"),
        ("x-forwarded-host", "evil example"),
        ("x-forwarded-host", "evil.example:"),
        ("x-forwarded-host", "evil.example:0"),
        ("x-forwarded-host", "evil.example:99999"),
        ("x-forwarded-host", "[2001:db8::1"),
        ("x-forwarded-host", "1.2.3.04"),
        ("x-forwarded-host", "évil.example"),
        ("x-forwarded-host", "a..b"),
        ("x-forwarded-port", "0"),
        ("x-forwarded-port", "70000"),
        ("x-forwarded-port", "https"),
        ("x-forwarded-port", "-1"),
        ("forwarded", 'for="203.0.113.9'),
        ("forwarded", "for=203.0.113.9;for=198.51.100.1"),
        ("forwarded", "for=203.0.113.9 proto=https"),
        ("forwarded", "for=999.1.1.1;proto=https"),
        ("forwarded", "for=203.0.113.9:http;proto=https"),
        ("forwarded", "for;proto=https"),
        ("forwarded", "=https"),
        ("forwarded", 'for="a\x01b"'),
        ("forwarded", "for=203.0.113.9;host=a/b"),  # "/" needs quoting
    ],
)
async def test_malformed_values_are_ignored(build: Build, header: tuple[str, str]) -> None:
    req = make_request(header)
    before = snapshot(req)
    seen = await build()(req)
    assert seen.client == PROXY
    assert str(seen.url) == before[1]
    assert seen.headers.multi_items() == before[2]


async def test_invalid_forwarded_values_leave_their_item_alone(build: Build) -> None:
    # Well-formed, but the proto and host are not usable: only the client applies,
    # and X-Forwarded-* does not stand in for what the element did say.
    req = make_request(
        ("forwarded", 'for=203.0.113.9;proto=ftp;host="a/b"'),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "x.example"),
    )
    seen = await build()(req)
    assert seen.client == ("203.0.113.9", 0)
    assert str(seen.url) == "http://app.internal:8000/p?q=1"
    assert seen.headers["host"] == "app.internal:8000"


async def test_malformed_chosen_entry_keeps_the_client_but_not_the_rest(build: Build) -> None:
    req = make_request(
        ("x-forwarded-for", "203.0.113.9, garbage"),
        ("x-forwarded-proto", "https"),
    )
    seen = await build()(req)
    assert seen.client == PROXY
    assert seen.scheme == "https"


# -- wrapping ----------------------------------------------------------------------------------


def sync_app(request: Request) -> Response:
    return Response(200, text=f"{request.client}")


async def async_app(request: Request) -> Response:
    return Response(200, text=f"{request.client}")


class AsyncCallable:
    async def __call__(self, request: Request) -> Response:
        return Response(200)


class SyncCallable:
    def __call__(self, request: Request) -> Response:
        return Response(200)


@pytest.mark.parametrize(
    ("app", "is_async"),
    [(sync_app, False), (async_app, True), (AsyncCallable(), True), (SyncCallable(), False)],
)
def test_wrapper_kind_follows_the_app(app: Any, is_async: bool) -> None:
    wrapper = ProxyHeaders(app)
    assert isinstance(wrapper, ProxyHeaders)
    assert inspect.iscoroutinefunction(wrapper.__call__) is is_async
    assert wrapper.app is app
    assert "ProxyHeaders" in repr(wrapper) and "127.0.0.1" in repr(wrapper)


async def test_wrapping_a_wrapper_stays_async() -> None:
    outer = ProxyHeaders(ProxyHeaders(async_app, trusted="10.0.0.0/8"), trusted="127.0.0.1")
    assert inspect.iscoroutinefunction(outer.__call__)
    req = make_request(("x-forwarded-for", "203.0.113.9, 10.0.0.2"))
    # The outer one trusts the peer and takes 10.0.0.2; the inner one trusts that.
    response = await outer(req)
    assert response.text == "('203.0.113.9', 0)"


def test_lifespan_is_forwarded() -> None:
    def lifespan() -> None: ...

    def app(request: Request) -> Response:
        return Response(200)

    app.lifespan = lifespan  # type: ignore[attr-defined]
    assert ProxyHeaders(app).lifespan is lifespan

    class WithLifespan(AsyncCallable):
        async def lifespan(self) -> None: ...

    obj = WithLifespan()
    wrapper = ProxyHeaders(obj)
    assert wrapper.lifespan == obj.lifespan
    assert not hasattr(ProxyHeaders(sync_app), "lifespan")


async def test_rewrite_alone() -> None:
    wrapper = ProxyHeaders(async_app)
    req = make_request(("x-forwarded-for", "203.0.113.9"))
    wrapper.rewrite(req)
    assert req.client == ("203.0.113.9", 0)


# -- end to end ----------------------------------------------------------------------------


def test_blocking_server_end_to_end() -> None:
    seen: list[dict[str, Any]] = []

    def app(request: Request) -> Response:
        seen.append(
            {
                "client": request.client,
                "url": str(request.url),
                "host": request.headers.get("host"),
            }
        )
        return Response(200, text="ok")

    with hyperpy.Server(ProxyHeaders(app, trusted="127.0.0.1"), port=0) as server:
        with hyperpy.Client() as client:
            response = client.get(
                f"{server.url}/where?x=1",
                headers={
                    "x-forwarded-for": "6.6.6.6, 203.0.113.9",
                    "x-forwarded-proto": "https",
                    "x-forwarded-host": "example.com",
                },
            )
            assert response.status == 200
            plain = client.get(f"{server.url}/plain")
            assert plain.status == 200

    # The peer (127.0.0.1) is trusted; both list entries were untrusted, so the
    # rightmost is the client: the prepended 6.6.6.6 is not believed.
    assert seen[0] == {
        "client": ("203.0.113.9", 0),
        "url": "https://example.com/where?x=1",
        "host": "example.com",
    }
    assert seen[1]["client"][0] == "127.0.0.1"
    assert seen[1]["url"] == f"{server.url}/plain"


async def test_trio_server_end_to_end() -> None:
    seen: list[Request] = []

    async def app(request: Request) -> Response:
        seen.append(request)
        return Response(200, text="ok")

    async with hyperpy.AsyncServer(ProxyHeaders(app), port=0) as server:
        async with hyperpy.AsyncClient() as client:
            response = await client.get(
                f"{server.url}/",
                headers={"forwarded": 'for="[2001:db8::7]:4711";proto=https;host=example.com'},
            )
            assert response.status == 200

    assert seen[0].client == ("2001:db8::7", 4711)
    assert str(seen[0].url) == "https://example.com/"
