"""One-call helpers: open a client, send one request, close the client.

The generated sync twins (``hyperpy.get`` and friends) are for blocking scripts;
code that sends many requests should keep a ``Client`` open instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, cast

from ..._core.proxies import ProxyTypes
from ..._models import URL, Response
from ..._tls import CertTypes, VerifyTypes
from .client import AsyncClient, RequestOptions, RetryTypes

if TYPE_CHECKING:
    from typing_extensions import Unpack


class OneRequestOptions(RequestOptions, total=False):
    """A request's options plus the settings of the client opened for it."""

    verify: VerifyTypes
    cert: CertTypes
    http2: bool
    proxy: ProxyTypes
    trust_env: bool
    uds: str | None
    retries: RetryTypes
    max_redirects: int
    decompress: bool
    http2_prior_knowledge: bool


_CLIENT_SETTINGS = (
    "verify",
    "cert",
    "http2",
    "http2_prior_knowledge",
    "proxy",
    "trust_env",
    "uds",
    "retries",
    "max_redirects",
    "decompress",
)


def _client(options: OneRequestOptions) -> tuple[AsyncClient, RequestOptions]:
    """The client for one request, and the request's own options."""
    settings = {name: options.pop(name) for name in _CLIENT_SETTINGS if name in options}  # type: ignore[misc]
    client = AsyncClient(**settings)
    return client, cast(RequestOptions, options)  # the client's settings are popped


async def request(method: str, url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """Send one request and return the response, body read."""
    client, own = _client(options)
    async with client:
        return await client.request(method, url, **own)


@asynccontextmanager
async def stream(
    method: str, url: str | URL, **options: Unpack[OneRequestOptions]
) -> AsyncIterator[Response]:
    """Send one request and yield the response before its body is read."""
    client, own = _client(options)
    async with client, client.stream(method, url, **own) as response:
        yield response


async def get(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """GET ``url`` (see ``request``)."""
    return await request("GET", url, **options)


async def head(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """HEAD ``url`` (see ``request``)."""
    return await request("HEAD", url, **options)


async def options(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """OPTIONS ``url`` (see ``request``)."""
    return await request("OPTIONS", url, **options)


async def delete(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """DELETE ``url`` (see ``request``)."""
    return await request("DELETE", url, **options)


async def post(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """POST ``url`` (see ``request``)."""
    return await request("POST", url, **options)


async def put(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """PUT ``url`` (see ``request``)."""
    return await request("PUT", url, **options)


async def patch(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """PATCH ``url`` (see ``request``)."""
    return await request("PATCH", url, **options)
