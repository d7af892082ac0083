"""Header field values a server adds to every response: ``Date`` and ``Server``."""

from __future__ import annotations

import time
from email.utils import formatdate

SERVER_HEADER = b"hyperpy"

_cache: tuple[int, bytes] = (0, b"")


def http_date(now: float | None = None) -> bytes:
    """IMF-fixdate for ``now`` (wall-clock seconds; default: the current time),
    formatted once per second rather than per response."""
    global _cache
    second = int(time.time() if now is None else now)
    cached_second, value = _cache
    if second != cached_second:
        value = formatdate(second, usegmt=True).encode("ascii")
        _cache = (second, value)
    return value
