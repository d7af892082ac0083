"""IO backends with paired names: ``Async*`` (trio) for ``_async``, ``Sync*`` for ``_sync``.

``_async`` code names only the ``Async*`` classes; unasync turns each into its
``Sync*`` twin, so both worlds run the same logic over different IO.
"""

from ._sync import (
    SyncClock,
    SyncEvent,
    SyncHandler,
    SyncListener,
    SyncLock,
    SyncNetwork,
    SyncSemaphore,
    SyncShield,
    SyncStateLock,
    SyncStream,
    SyncTaskFn,
    SyncTaskGroup,
    SyncTaskStatus,
)
from ._trio import (
    AsyncClock,
    AsyncEvent,
    AsyncHandler,
    AsyncListener,
    AsyncLock,
    AsyncNetwork,
    AsyncSemaphore,
    AsyncShield,
    AsyncStateLock,
    AsyncStream,
    AsyncTaskFn,
    AsyncTaskGroup,
    AsyncTaskStatus,
)

__all__ = [
    "AsyncClock",
    "AsyncEvent",
    "AsyncHandler",
    "AsyncListener",
    "AsyncLock",
    "AsyncNetwork",
    "AsyncSemaphore",
    "AsyncShield",
    "AsyncStateLock",
    "AsyncStream",
    "AsyncTaskFn",
    "AsyncTaskGroup",
    "AsyncTaskStatus",
    "SyncClock",
    "SyncEvent",
    "SyncHandler",
    "SyncListener",
    "SyncLock",
    "SyncNetwork",
    "SyncSemaphore",
    "SyncShield",
    "SyncStateLock",
    "SyncStream",
    "SyncTaskFn",
    "SyncTaskGroup",
    "SyncTaskStatus",
]
