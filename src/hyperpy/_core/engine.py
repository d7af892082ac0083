"""Which HTTP/1.1 parser engine runs beneath ``_core``'s decisions.

``h11`` (pure Python, always installed) or ``zttp`` (``pip install
hyperpy[fast]``). Both (``h1_h11.py`` and ``h1_zttp.py``) have the interface
``h1.py`` defines, yield its events and keep the same rules, so what a peer
sees does not depend on the engine, only how fast it is served. The choice, in
order: the ``engine=`` a client or server was given, the ``HYPERPY_ENGINE``
environment variable, then zttp if it is importable, else h11.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from functools import cache
from types import ModuleType
from typing import cast

from .._config import ServerLimits
from .._exceptions import MissingExtra
from .h1 import H1ClientEngine, H1ServerEngine

ENGINES = ("h11", "zttp")
_MODULES = {"h11": "hyperpy._core.h1_h11", "zttp": "hyperpy._core.h1_zttp"}


def _available(engine: str) -> bool:
    if engine == "h11":
        return True
    return (
        importlib.util.find_spec("zttp") is not None
        and importlib.util.find_spec(_MODULES["zttp"]) is not None
    )


def choose(engine: str | None = None) -> str:
    """The engine to use: ``engine`` if given, else ``HYPERPY_ENGINE``, else the
    fastest one installed. An unknown name is a ValueError; a missing one names
    the extra to install."""
    wanted = engine or os.environ.get("HYPERPY_ENGINE") or None
    if wanted is None:
        return "zttp" if _available("zttp") else "h11"
    wanted = wanted.strip().lower()
    if wanted not in ENGINES:
        raise ValueError(f"unknown HTTP/1.1 engine {wanted!r}: choose one of {', '.join(ENGINES)}")
    if not _available(wanted):
        raise MissingExtra(f"the {wanted} engine is not installed: pip install hyperpy[fast]")
    return wanted


@cache
def module(engine: str) -> ModuleType:
    """The ``_core`` module implementing ``engine`` (``H1Client``, ``H1Server``)."""
    return importlib.import_module(_MODULES[engine])


# Each engine module makes mypy check that its classes satisfy h1.py's Protocols (and
# the engine tests check the outcomes), so the IO code is typed against those.


def h1_client(engine: str) -> H1ClientEngine:
    """A new client-side HTTP/1.1 protocol state on ``engine``."""
    return cast(H1ClientEngine, module(engine).H1Client())


def h1_server(engine: str, limits: ServerLimits) -> H1ServerEngine:
    """A new server-side HTTP/1.1 protocol state on ``engine``, with ``limits``."""
    return cast(H1ServerEngine, module(engine).H1Server(limits))
