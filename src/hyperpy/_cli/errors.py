"""The one error the command line reports without a traceback."""

from __future__ import annotations


class UsageError(Exception):
    """A bad argument or an app that cannot be served: ``error: ...``, exit status 2."""
