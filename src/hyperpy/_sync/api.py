# GENERATED from src/hyperpy/_async/api.py by scripts/unasync.py: do not edit.
"""One-call helpers: open a client, send one request, close the client.

The generated sync twins (``hyperpy.get`` and friends) are for blocking scripts;
code that sends many requests should keep a ``Client`` open instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .._config import Timeout, TimeoutTypes, VerifyTypes
from .._models import URL, Response
from .client import Client


def request(
    method: str,
    url: str | URL,
    *,
    timeout: TimeoutTypes = Timeout(),
    verify: VerifyTypes = True,
    http2: bool = False,
    **kwargs: Any,
) -> Response:
    """Send one request and return the response, body read."""
    with Client(timeout=timeout, verify=verify, http2=http2) as client:
        return client.request(method, url, **kwargs)


@contextmanager
def stream(
    method: str,
    url: str | URL,
    *,
    timeout: TimeoutTypes = Timeout(),
    verify: VerifyTypes = True,
    http2: bool = False,
    **kwargs: Any,
) -> Iterator[Response]:
    """Send one request and yield the response before its body is read."""
    with (
        Client(timeout=timeout, verify=verify, http2=http2) as client,
        client.stream(method, url, **kwargs) as response,
    ):
        yield response


def get(url: str | URL, **kwargs: Any) -> Response:
    return request("GET", url, **kwargs)


def head(url: str | URL, **kwargs: Any) -> Response:
    return request("HEAD", url, **kwargs)


def options(url: str | URL, **kwargs: Any) -> Response:
    return request("OPTIONS", url, **kwargs)


def delete(url: str | URL, **kwargs: Any) -> Response:
    return request("DELETE", url, **kwargs)


def post(url: str | URL, **kwargs: Any) -> Response:
    return request("POST", url, **kwargs)


def put(url: str | URL, **kwargs: Any) -> Response:
    return request("PUT", url, **kwargs)


def patch(url: str | URL, **kwargs: Any) -> Response:
    return request("PATCH", url, **kwargs)
