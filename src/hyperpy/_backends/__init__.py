"""IO backends with paired names: ``Async*`` (trio) for ``_async``, ``Sync*`` for ``_sync``.

``_async`` code names only the ``Async*`` names; the generator turns each into
its ``Sync*`` twin, so both worlds run the same logic over different IO. The
stream, listener and network are Protocols (``base``): the socket networks
here and the memory network of ``hyperpy.testing`` both implement them.
"""

from ._sync import (
    SyncCancelScope,
    SyncClock,
    SyncEvent,
    SyncLock,
    SyncSemaphore,
    SyncShield,
    SyncSocketListener,
    SyncSocketNetwork,
    SyncSocketStream,
    SyncStateLock,
    SyncTaskGroup,
    SyncTaskStatus,
)
from ._sync_park import SyncParker, SyncWorkerPool
from ._trio import (
    AsyncCancelScope,
    AsyncClock,
    AsyncEvent,
    AsyncLock,
    AsyncParker,
    AsyncSemaphore,
    AsyncShield,
    AsyncSocketListener,
    AsyncSocketNetwork,
    AsyncSocketStream,
    AsyncStateLock,
    AsyncTaskGroup,
    AsyncTaskStatus,
    AsyncWorkerPool,
)
from .base import (
    Address,
    AsyncListener,
    AsyncNetwork,
    AsyncStream,
    SyncListener,
    SyncNetwork,
    SyncStream,
)

__all__ = [
    "Address",
    "AsyncCancelScope",
    "AsyncClock",
    "AsyncEvent",
    "AsyncListener",
    "AsyncLock",
    "AsyncNetwork",
    "AsyncParker",
    "AsyncSemaphore",
    "AsyncShield",
    "AsyncSocketListener",
    "AsyncSocketNetwork",
    "AsyncSocketStream",
    "AsyncStateLock",
    "AsyncStream",
    "AsyncTaskGroup",
    "AsyncTaskStatus",
    "AsyncWorkerPool",
    "SyncCancelScope",
    "SyncClock",
    "SyncEvent",
    "SyncListener",
    "SyncLock",
    "SyncNetwork",
    "SyncParker",
    "SyncSemaphore",
    "SyncShield",
    "SyncSocketListener",
    "SyncSocketNetwork",
    "SyncSocketStream",
    "SyncStateLock",
    "SyncStream",
    "SyncTaskGroup",
    "SyncTaskStatus",
    "SyncWorkerPool",
]
