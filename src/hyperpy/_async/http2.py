"""Placeholder replaced by the HTTP/2 client connection."""

from __future__ import annotations

from typing import Any


class AsyncHTTP2Connection:
    multiplexed = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError
