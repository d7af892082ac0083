"""Configuration value objects shared by both worlds: timeouts and limits."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Union


class _Unset(enum.Enum):
    """The type of ``UNSET``: an argument the caller did not give."""

    UNSET = enum.auto()


UNSET = _Unset.UNSET


def _seconds(name: str, value: float | None) -> float | None:
    """``value`` checked as a timeout: a finite number of seconds, 0 or more, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Timeout {name} must be a number of seconds or None, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"Timeout {name} must be a finite number of seconds, 0 or more (None: no limit),"
            f" not {value!r}"
        )
    return float(value)


@dataclass(frozen=True, init=False)
class Timeout:
    """Per-step limits in seconds (``None`` waits forever).

    ``connect`` bounds TCP+TLS set-up, ``read`` each wait for peer bytes, ``write``
    each wait for the peer to accept ours, ``pool`` the wait for a free connection.
    ``Timeout(5)`` sets all four; ``Timeout(5, read=30)`` all but ``read``.

    ``total`` (None unless given) is a deadline over the whole request: the pool
    wait, connecting, sending, every read of the response body, and every
    redirect and retry. Each step then waits at most what is left of it, so a
    server that drips a byte at a time cannot outlive it; the step that runs out
    raises its typed timeout (``ReadTimeout``, ``WriteTimeout``, ...).

    Every value is a finite number of seconds, 0 or more (0: only what is ready at
    once), or None.
    """

    connect: float | None = 5.0
    read: float | None = 5.0
    write: float | None = 5.0
    pool: float | None = 5.0
    total: float | None = None

    def __init__(
        self,
        timeout: float | _Unset | None = UNSET,
        *,
        connect: float | _Unset | None = UNSET,
        read: float | _Unset | None = UNSET,
        write: float | _Unset | None = UNSET,
        pool: float | _Unset | None = UNSET,
        total: float | None = None,
    ) -> None:
        default = 5.0 if timeout is UNSET else _seconds("timeout", timeout)
        for name, value in (("connect", connect), ("read", read), ("write", write), ("pool", pool)):
            object.__setattr__(self, name, default if value is UNSET else _seconds(name, value))
        object.__setattr__(self, "total", _seconds("total", total))

    def with_(self, **changes: float | None) -> Timeout:
        """Return a copy with some limits changed."""
        names = ("connect", "read", "write", "pool", "total")
        values = {name: getattr(self, name) for name in names}
        values.update(changes)
        return Timeout(**values)


TimeoutTypes = Union[Timeout, float, None]


def to_timeout(value: TimeoutTypes | Timeout) -> Timeout:
    """Accept ``Timeout``, a number (all steps) or ``None`` (no limits)."""
    if isinstance(value, Timeout):
        return value
    return Timeout(value)


@dataclass(frozen=True)
class H2Settings:
    """HTTP/2 limits we advertise and enforce (both client and server).

    The defaults follow hyper / the Rust h2 crate and nghttp2 rather than the h2
    library, whose 16 MiB inbound frame size and 64 KiB windows suit neither
    side. A peer past an abuse budget gets GOAWAY(ENHANCE_YOUR_CALM); a burst
    budget refills at its rate per second (see docs/security.md).
    """

    max_concurrent_streams: int = 100
    initial_window_size: int = 1024 * 1024
    connection_window_size: int = 1024 * 1024
    max_frame_size: int = 16 * 1024
    # Decoded request or response fields; a header block (HEADERS and its
    # CONTINUATION frames) may be at most 4 times this on the wire.
    max_header_list_size: int = 16 * 1024
    # Bytes a writer may hand to a stream before it waits for the peer's credit.
    max_send_buffer: int = 400 * 1024
    # RST_STREAM frames the peer may send (rapid reset, CVE-2023-44487): nghttp2's.
    remote_reset_burst: int = 1000
    remote_reset_rate: float = 33.0
    # RST_STREAM frames the peer may make us send, in all (the h2 crate's 1024).
    local_reset_limit: int = 1024
    # DATA frames that carry nothing and do not end their stream.
    empty_data_burst: int = 100
    empty_data_rate: float = 10.0
    # PING, SETTINGS and PRIORITY frames, each of which costs us work or a reply.
    control_frame_burst: int = 1000
    control_frame_rate: float = 100.0

    @property
    def max_header_block(self) -> int:
        """Bytes of one header block (HEADERS + CONTINUATION) accepted on the wire."""
        return 4 * self.max_header_list_size


@dataclass(frozen=True)
class ServerLimits:
    """Limits on what a client may make the server hold (see docs/security.md for
    each default beside hyper's, nginx's and hypercorn's).

    ``keep_alive_timeout`` closes a connection that sends nothing: a new one
    before its first byte, an HTTP/1.1 one between requests, an HTTP/2 one with
    no stream. ``header_read_timeout`` bounds a request head from its first byte
    to its end (slowloris). ``write_timeout`` abandons a response write, or an
    HTTP/2 stream held at a zero window, that makes no progress for that long.
    """

    max_head_bytes: int = 64 * 1024
    max_header_count: int = 100
    max_target_bytes: int = 8 * 1024
    header_read_timeout: float | None = 10.0
    keep_alive_timeout: float | None = 5.0
    body_read_timeout: float | None = 30.0
    write_timeout: float | None = 15.0
    tls_handshake_timeout: float | None = 10.0
    max_connections: int = 1000
    # Blocking server: threads that serve HTTP/1.1 requests (idle connections hold
    # none). The trio server runs a task per connection and ignores it.
    max_workers: int = 64
