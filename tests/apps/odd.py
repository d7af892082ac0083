"""Objects the interface detection cannot tell, or must refuse."""

from __future__ import annotations

from typing import Any


def anything(*args: Any) -> None:
    """Takes 1, 2 or 3 arguments alike: which interface is meant cannot be told."""


def four(a: Any, b: Any, c: Any, d: Any) -> None:
    """Takes four arguments: no interface does."""


not_callable = 42


class AppClass:
    """A class, not an app: calling it would build one."""

    def __init__(self) -> None:
        pass
