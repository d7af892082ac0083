"""Type aliases both worlds share: a server's handler and task function, a client's
event hooks.

``_async`` code names the ``Async*`` aliases; the generator turns them into the
``Sync*`` ones, whose handler is a plain function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from ._models import Request, Response

# What a server calls for each request.
AsyncHandler = Callable[[Request], Awaitable[Response]]
SyncHandler = Callable[[Request], Response]

# A function a server runs as a task (trio) or in a thread (blocking world).
AsyncTaskFn = Callable[..., Awaitable[Any]]
SyncTaskFn = Callable[..., Any]

# A client's event hooks: called with each request sent, each response received.
AsyncRequestHook = Callable[[Request], Awaitable[None]]
SyncRequestHook = Callable[[Request], None]
AsyncResponseHook = Callable[[Response], Awaitable[None]]
SyncResponseHook = Callable[[Response], None]
AsyncEventHooks = Mapping[str, Sequence[Callable[[Any], Awaitable[None]]]]
SyncEventHooks = Mapping[str, Sequence[Callable[[Any], None]]]
