# GENERATED from src/hyperpy/_async/server_http2.py by scripts/unasync.py: do not edit.
"""Placeholder replaced by the HTTP/2 server connection."""

from __future__ import annotations

from typing import Any


class SyncServerHTTP2Connection:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def drain(self) -> None: ...
    def abort(self) -> None: ...
    def run(self) -> None: ...
