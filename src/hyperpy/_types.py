"""Type aliases that both worlds' servers share: the handler, and a task function.

``_async`` code names the ``Async*`` aliases; the generator turns them into the
``Sync*`` ones, whose handler is a plain function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ._models import Request, Response

# What a server calls for each request.
AsyncHandler = Callable[[Request], Awaitable[Response]]
SyncHandler = Callable[[Request], Response]

# A function a server runs as a task (trio) or in a thread (blocking world).
AsyncTaskFn = Callable[..., Awaitable[Any]]
SyncTaskFn = Callable[..., Any]
