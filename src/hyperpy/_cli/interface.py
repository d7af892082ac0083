"""Loading ``module:attribute`` and telling which interface the object speaks.

ASGI is an async callable taking (scope, receive, send); WSGI a plain callable
taking (environ, start_response); a hyperpy handler takes (request), async for
the trio server, plain for the threaded one. The signature decides; when it
cannot, ``--interface`` must.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Literal

from .errors import UsageError

DEMO_APP = {"trio": "hyperpy._async.demo:app", "threads": "hyperpy._sync.demo:app"}
_ASK = "pass --interface asgi, wsgi or hyperpy"


@dataclass(frozen=True)
class Interface:
    """How to serve the app: its kind, on which server, and why."""

    kind: Literal["asgi", "wsgi", "hyperpy"]
    threads: bool  # the threaded Server; else the trio AsyncServer
    reason: str

    def describe(self) -> str:
        server = "threaded" if self.threads else "trio"
        return f"interface {self.kind} ({self.reason}), {server} server"


def load_app(spec: str, *, factory: bool = False) -> Any:
    """Import ``module:attribute`` (the attribute may be dotted; the cwd is importable),
    and call it first with ``factory``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"APP must look like module:attribute, not {spec!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise UsageError(f"cannot import {module_name!r}: {exc}") from None
        traceback.print_exc()  # the module itself failed: show where
        raise UsageError(f"cannot import {module_name!r}: {exc}") from None
    except Exception as exc:
        traceback.print_exc()
        raise UsageError(f"cannot import {module_name!r}: {exc!r}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attr!r}") from None
    if factory:
        if not callable(obj):
            raise UsageError(f"--factory: {spec!r} is not callable")
        try:
            obj = obj()
        except Exception as exc:
            traceback.print_exc()
            raise UsageError(f"--factory: calling {spec!r} failed: {exc!r}") from None
    if not callable(obj):
        raise UsageError(f"{spec!r} is not callable (a {type(obj).__name__})")
    return obj


def detect(app: Any, spec: str, forced: str = "auto", *, sync: bool = False) -> Interface:
    """The interface to serve ``app`` (loaded from ``spec``) with; UsageError when
    it cannot be told or clashes with ``--sync``."""
    is_async = _is_async(app)
    if forced == "asgi":
        found = Interface("asgi", False, "as --interface says")
    elif forced == "wsgi":
        found = Interface("wsgi", True, "as --interface says")
    elif forced == "hyperpy":
        found = Interface("hyperpy", sync or not is_async, "as --interface says")
    else:
        found = _detect(app, spec, is_async)
    if sync:
        if found.kind == "asgi":
            raise UsageError("--sync is for native handlers: an ASGI app runs on the trio server")
        if found.kind == "hyperpy" and is_async:
            raise UsageError("--sync needs a plain `def app(request)` handler, not an async one")
    return found


def _detect(app: Any, spec: str, is_async: bool) -> Interface:
    if inspect.isclass(app):
        raise UsageError(
            f"{spec!r} is a class: give an instance, or --factory if calling it builds the app"
        )
    shape = _Shape.of(app)
    if shape is None:
        raise UsageError(f"cannot read the signature of {spec!r}: {_ASK}")
    if is_async:
        if shape.takes(3) and not shape.takes(1):
            return Interface("asgi", False, f"async callable taking {shape.names(3)}")
        if shape.takes(1) and not shape.takes(3):
            return Interface("hyperpy", False, f"async callable taking {shape.names(1)}")
        if shape.takes(1):
            raise UsageError(f"{spec!r} could take 1 or 3 arguments (hyperpy or ASGI): {_ASK}")
        what = "an ASGI 2 app? only ASGI 3 is served" if shape.takes(2) else _ASK
        raise UsageError(f"{spec!r} is async but takes neither 1 nor 3 arguments ({what})")
    if shape.takes(2) and (not shape.takes(1) or hasattr(app, "wsgi_app")):
        return Interface("wsgi", True, f"callable taking {shape.names(2)}")
    if shape.takes(1) and not shape.takes(2):
        return Interface("hyperpy", True, f"callable taking {shape.names(1)}")
    if shape.takes(1):
        raise UsageError(f"{spec!r} could take 1 or 2 arguments (hyperpy or WSGI): {_ASK}")
    if shape.takes(3):
        raise UsageError(
            f"{spec!r} takes 3 arguments but is not async: if it is an ASGI app, "
            "pass --interface asgi"
        )
    raise UsageError(f"{spec!r} takes no 1, 2 or 3 positional arguments: {_ASK}")


@dataclass(frozen=True)
class _Shape:
    """The positional parameters a callable accepts."""

    params: tuple[str, ...]
    required: int
    varargs: bool
    required_keywords: bool

    @classmethod
    def of(cls, app: Any) -> _Shape | None:
        try:
            signature = inspect.signature(app)
        except (TypeError, ValueError):
            return None
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        params = [p for p in signature.parameters.values() if p.kind in positional]
        return cls(
            params=tuple(p.name for p in params),
            required=sum(p.default is inspect.Parameter.empty for p in params),
            varargs=any(
                p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values()
            ),
            required_keywords=any(
                p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
                for p in signature.parameters.values()
            ),
        )

    def takes(self, count: int) -> bool:
        """Whether it can be called with ``count`` positional arguments."""
        if self.required_keywords or count < self.required:
            return False
        return self.varargs or count <= len(self.params)

    def names(self, count: int) -> str:
        names = list(self.params[:count])
        names += ["*args"] if len(names) < count else []
        return ", ".join(names)


def _is_async(app: Any) -> bool:
    """An ``async def`` function (partials seen through) or an object whose
    ``__call__`` is one."""
    target = app.func if isinstance(app, functools.partial) else app
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - an object with an async __call__
    )
