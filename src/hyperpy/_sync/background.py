# GENERATED from src/hyperpy/_async/background.py by scripts/unasync.py: do not edit.
"""A task group owned by an object that opens it in its own ``__enter__`` and
closes it in its ``__exit__`` (the client's HTTP/2 readers, a server started in
the background)."""

from __future__ import annotations

import logging
from types import TracebackType

from .._backends import SyncTaskGroup

logger = logging.getLogger("hyperpy")


class SyncBackgroundTasks:
    """Opens and closes one task group on its owner's behalf."""

    __slots__ = ("group",)

    def __init__(self) -> None:
        self.group: SyncTaskGroup | None = None

    def open(self) -> SyncTaskGroup:
        """Enter a new task group and return it."""
        assert self.group is None, "already open"
        group = SyncTaskGroup()
        group.__enter__()
        self.group = group
        return group

    def close(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
        *,
        cancel: bool,
    ) -> None:
        """Leave the task group, first cancelling its tasks if ``cancel``; waits for
        them to end.

        The owner's own exception (``exc``) is not handed to the group: it goes on
        propagating from the owner's ``__exit__`` as it is. Handed over, the group
        could wrap it in an ExceptionGroup, and a caller's
        ``except hyperpy.ConnectError`` around ``with client:`` would miss it.
        Only failures of the group's own tasks are raised here.
        """
        group, self.group = self.group, None
        if group is None:
            return
        if cancel:
            group.cancel()
        try:
            group.__exit__(None, None, None)
        except BaseException as failure:
            if exc is None:
                raise
            # The owner's own exception (a KeyboardInterrupt, say) is what its caller
            # must see. A task's real failure is kept in the log; the tasks' own
            # cancellation (not an Exception) is not news.
            if isinstance(failure, Exception):
                logger.error("a background task failed as its owner ended", exc_info=failure)
