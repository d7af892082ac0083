"""The handler a server runs for an app: its interface's adapter, and proxy headers."""

from __future__ import annotations

from typing import Any

from .errors import UsageError
from .interface import Interface
from .serve_args import ServeConfig


def build_handler(app: Any, interface: Interface, config: ServeConfig) -> Any:
    """``app`` wrapped as a hyperpy handler (sync for the threaded server, async for trio)."""
    handler: Any
    if interface.kind == "asgi":
        from ..asgi import ASGIAdapter

        handler = ASGIAdapter(app, root_path=config.root_path, lifespan=config.lifespan)
    elif interface.kind == "wsgi":
        # Imported here: the WSGI world is needed only when serving a WSGI app.
        from ..wsgi import WSGIAdapter

        processes = config.workers or 1
        handler = WSGIAdapter(app, root_path=config.root_path, multiprocess=processes > 1)
    else:
        if config.root_path:
            raise UsageError("--root-path is for ASGI and WSGI apps, not hyperpy handlers")
        handler = app
    if config.proxy_headers:
        from ..proxy_headers import ProxyHeaders

        try:
            handler = ProxyHeaders(handler, trusted=config.forwarded_allow_ips)
        except ValueError as exc:
            raise UsageError(f"--forwarded-allow-ips: {exc}") from None
    return handler
