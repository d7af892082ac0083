"""Placeholder replaced by the HTTP/2 server connection."""

from __future__ import annotations

from typing import Any


class AsyncServerHTTP2Connection:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def drain(self) -> None: ...
    async def abort(self) -> None: ...
    async def run(self) -> None: ...
