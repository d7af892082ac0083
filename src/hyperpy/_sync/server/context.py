# GENERATED from src/hyperpy/_async/server/context.py by scripts/unasync.py: do not edit.
"""What a server connection needs from its server, and what it reports back.

Connections never import the server: they are handed an ``SyncServerContext``
(limits, settings, how to call the app, how to run a task), and an HTTP/1.1
connection that switches to HTTP/2 returns an ``H2CUpgrade`` for the server to
continue, so the HTTP/1.1 code never imports the HTTP/2 code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..._backends import SyncStream
from ..._config import H2Settings, ServerLimits
from ..._models import Request, Response
from ..._types import SyncTaskFn


class SyncServerContext(Protocol):
    """The server as its connections see it."""

    limits: ServerLimits
    h2_settings: H2Settings
    http2: bool  # HTTP/2 is served (so an h2c upgrade may be accepted)
    access_log: bool  # write a line per answered request (see _core/access_log.py)
    engine: str  # the HTTP/1.1 parser engine (see _core/engine.py)

    @property
    def parks(self) -> bool:
        """Idle connections give up their thread (return PARKED) rather than wait."""
        ...

    def call_app(self, request: Request) -> Response | None:
        """Run the handler; None when the connection should just end."""
        ...

    def spawn_task(self, fn: SyncTaskFn, *args: Any) -> None:
        """Run ``fn(*args)`` beside the connection (it outlives no server)."""
        ...

    def connection_idle(self, stream: SyncStream, expires: float | None = None) -> None:
        """Nothing is in progress on ``stream``: the server may close it when full,
        and, where ``closes_idle``, closes it at ``expires`` (monotonic seconds) if it
        is still idle then; elsewhere the connection times its own wait."""
        ...

    def connection_busy(self, stream: SyncStream) -> None:
        """A request is in progress on ``stream``: the server must not shed it."""
        ...

    @property
    def closes_idle(self) -> bool:
        """Idle connections' deadlines are kept by the server (one task for all of
        them), so a connection waits for its next request without a timer."""
        ...


@dataclass(frozen=True)
class H2CUpgrade:
    """An HTTP/1.1 connection answered ``Upgrade: h2c`` with 101: the rest of the
    connection is HTTP/2, and the request that asked is its stream 1."""

    stream: SyncStream  # the connection, now HTTP/2's
    settings: bytes  # the request's HTTP2-Settings value
    request: Request  # to be answered on stream 1
    initial: bytes  # bytes that followed the request (the client's preface, ...)
