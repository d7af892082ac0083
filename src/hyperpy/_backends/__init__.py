"""IO backends with paired names: ``Async*`` (trio) for ``_async``, ``Sync*`` for ``_sync``.

``_async`` code names only the ``Async*`` classes; unasync turns each into its
``Sync*`` twin, so both worlds run the same logic over different IO.
"""

from ._sync import (
    SyncClock,
    SyncEvent,
    SyncListener,
    SyncLock,
    SyncNetwork,
    SyncSemaphore,
    SyncShield,
    SyncStateLock,
    SyncStream,
    SyncTaskGroup,
    SyncTaskStatus,
)
from ._trio import (
    AsyncClock,
    AsyncEvent,
    AsyncListener,
    AsyncLock,
    AsyncNetwork,
    AsyncSemaphore,
    AsyncShield,
    AsyncStateLock,
    AsyncStream,
    AsyncTaskGroup,
    AsyncTaskStatus,
)

__all__ = [
    "AsyncClock",
    "AsyncEvent",
    "AsyncListener",
    "AsyncLock",
    "AsyncNetwork",
    "AsyncSemaphore",
    "AsyncShield",
    "AsyncStateLock",
    "AsyncStream",
    "AsyncTaskGroup",
    "AsyncTaskStatus",
    "SyncClock",
    "SyncEvent",
    "SyncListener",
    "SyncLock",
    "SyncNetwork",
    "SyncSemaphore",
    "SyncShield",
    "SyncStateLock",
    "SyncStream",
    "SyncTaskGroup",
    "SyncTaskStatus",
]
