"""One-call helpers: open a client, send one request, close the client.

The generated sync twins (``hyperpy.get`` and friends) are for blocking scripts;
code that sends many requests should keep a ``Client`` open instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .._config import Timeout, TimeoutTypes, VerifyTypes
from .._models import URL, Response
from .client import AsyncClient


async def request(
    method: str,
    url: str | URL,
    *,
    timeout: TimeoutTypes = Timeout(),
    verify: VerifyTypes = True,
    http2: bool = False,
    **kwargs: Any,
) -> Response:
    """Send one request and return the response, body read."""
    async with AsyncClient(timeout=timeout, verify=verify, http2=http2) as client:
        return await client.request(method, url, **kwargs)


@asynccontextmanager
async def stream(
    method: str,
    url: str | URL,
    *,
    timeout: TimeoutTypes = Timeout(),
    verify: VerifyTypes = True,
    http2: bool = False,
    **kwargs: Any,
) -> AsyncIterator[Response]:
    """Send one request and yield the response before its body is read."""
    async with (
        AsyncClient(timeout=timeout, verify=verify, http2=http2) as client,
        client.stream(method, url, **kwargs) as response,
    ):
        yield response


async def get(url: str | URL, **kwargs: Any) -> Response:
    return await request("GET", url, **kwargs)


async def head(url: str | URL, **kwargs: Any) -> Response:
    return await request("HEAD", url, **kwargs)


async def options(url: str | URL, **kwargs: Any) -> Response:
    return await request("OPTIONS", url, **kwargs)


async def delete(url: str | URL, **kwargs: Any) -> Response:
    return await request("DELETE", url, **kwargs)


async def post(url: str | URL, **kwargs: Any) -> Response:
    return await request("POST", url, **kwargs)


async def put(url: str | URL, **kwargs: Any) -> Response:
    return await request("PUT", url, **kwargs)


async def patch(url: str | URL, **kwargs: Any) -> Response:
    return await request("PATCH", url, **kwargs)
