"""The access log: one line per answered request, to the ``hyperpy.access`` logger.

The format is the combined log format with the protocol version in the request
line and the duration in seconds appended::

    127.0.0.1 - - [02/Dec/2026:05:51:53 +0000] "GET /a?b=1 HTTP/2" 200 1234 "-" "curl/8.5.0" 0.0012

The client address, ``-``, ``-``, the time the request arrived (UTC), the request
line, the status, the body bytes sent, Referer, User-Agent, and the seconds from
the request's head to the response's last byte.
"""

from __future__ import annotations

import logging
import time

from .._models import Request

logger = logging.getLogger("hyperpy.access")

# (second, its text): one strftime per second, not per request. One tuple, swapped
# whole, so that threads never pair one second with another's text.
_cache = (-1, "")


def _stamp(at: float) -> str:
    global _cache
    second = int(at)
    cached, text = _cache
    if second != cached:
        text = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(second))
        _cache = (second, text)
    return text


def _quoted(value: str | None) -> str:
    if not value:
        return "-"
    return value.replace("\\", "\\\\").replace('"', '\\"')


def enabled() -> bool:
    """Whether a line would be written (so the server can skip the work)."""
    return logger.isEnabledFor(logging.INFO)


def log_request(
    request: Request, status: int, sent: int, started_wall: float, duration: float
) -> None:
    """Write the line for ``request``, answered with ``status`` and ``sent`` body bytes."""
    client = request.client[0] if request.client and request.client[0] else "-"
    headers = request.headers
    logger.info(
        '%s - - [%s] "%s %s HTTP/%s" %d %d "%s" "%s" %.4f',
        client,
        _stamp(started_wall),
        request.method,
        _quoted(request.target),
        request.http_version,
        status,
        sent,
        _quoted(headers.get("referer")),
        _quoted(headers.get("user-agent")),
        duration,
    )
