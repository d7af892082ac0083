# GENERATED from src/hyperpy/_async/client/api.py by scripts/unasync.py: do not edit.
"""One-call helpers: open a client, send one request, close the client.

The generated sync twins (``hyperpy.get`` and friends) are for blocking scripts;
code that sends many requests should keep a ``Client`` open instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, cast

from ..._core.proxies import ProxyTypes
from ..._models import URL, Response
from ..._tls import CertTypes, VerifyTypes
from .client import Client, RequestOptions, RetryTypes

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


def _client(options: OneRequestOptions) -> tuple[Client, RequestOptions]:
    """The client for one request, and the request's own options."""
    settings = {name: options.pop(name) for name in _CLIENT_SETTINGS if name in options}  # type: ignore[misc]
    client = Client(**settings)
    return client, cast(RequestOptions, options)  # the client's settings are popped


def request(method: str, url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """Send one request and return the response, body read."""
    client, own = _client(options)
    with client:
        return client.request(method, url, **own)


@contextmanager
def stream(method: str, url: str | URL, **options: Unpack[OneRequestOptions]) -> Iterator[Response]:
    """Send one request and yield the response before its body is read."""
    client, own = _client(options)
    with client, client.stream(method, url, **own) as response:
        yield response


def get(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """GET ``url`` (see ``request``)."""
    return request("GET", url, **options)


def head(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """HEAD ``url`` (see ``request``)."""
    return request("HEAD", url, **options)


def options(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """OPTIONS ``url`` (see ``request``)."""
    return request("OPTIONS", url, **options)


def delete(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """DELETE ``url`` (see ``request``)."""
    return request("DELETE", url, **options)


def post(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """POST ``url`` (see ``request``)."""
    return request("POST", url, **options)


def put(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """PUT ``url`` (see ``request``)."""
    return request("PUT", url, **options)


def patch(url: str | URL, **options: Unpack[OneRequestOptions]) -> Response:
    """PATCH ``url`` (see ``request``)."""
    return request("PATCH", url, **options)
