"""The ``serve`` command: in this process, or as a supervisor of worker processes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .._tls import server_ssl_context
from . import logs
from .errors import UsageError
from .listening import bind, remove_socket_file, where
from .reload import ChangeWatcher
from .serve_args import ServeConfig, to_config
from .single import serve_here
from .supervisor import Supervisor


def run_serve(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run ``serve`` as parsed in ``args`` from the command line ``argv``."""
    config = to_config(args)
    if config.supervised is not None or (config.workers is None and not config.reload):
        return serve_here(config)
    watcher = None
    if config.reload:
        for path in config.reload_dirs:
            if not os.path.isdir(path):
                raise UsageError(f"--reload-dir {path}: not a directory")
        watcher = ChangeWatcher(config.reload_dirs)
    return _supervise(config, argv, watcher)


def _supervise(config: ServeConfig, argv: Sequence[str], watcher: ChangeWatcher | None) -> int:
    logs.configure(level=config.log_level, access_log=False, config_file=config.log_config)
    if config.certfile:
        # Checked here once, rather than by every worker failing the same way.
        try:
            server_ssl_context(None, config.certfile, config.keyfile, ("http/1.1",))
        except OSError as exc:
            raise UsageError(f"cannot load the certificate or key: {exc}") from exc
    try:
        listener = bind(config)
    except OSError as exc:
        raise UsageError(f"cannot listen: {exc}") from exc
    try:
        url = f"unix:{config.uds}" if config.uds else where(listener.getsockname(), tls=config.tls)
        if watcher is not None:
            dirs = ", ".join(config.reload_dirs)
            print(f"hyperpy serving on {url} (reloading on changes in {dirs})", flush=True)
        else:
            count = config.workers or 1
            print(f"hyperpy serving on {url} ({count} worker{'s' * (count > 1)})", flush=True)
        serve_args = list(argv)[list(argv).index("serve") + 1 :]
        supervisor = Supervisor(
            serve_args,
            listener,
            count=1 if watcher is not None else config.workers or 1,
            grace=config.graceful_timeout,
            watcher=watcher,
        )
        try:
            return supervisor.run()
        except KeyboardInterrupt:  # outside the supervisor's own handling
            return 130
    finally:
        listener.close()
        if config.uds is not None:
            remove_socket_file(config.uds)
        sys.stdout.flush()
