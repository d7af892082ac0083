"""The command line: ``hyperpy serve``, ``hyperpy get`` and ``hyperpy post`` (docs/cli.md).

``serve [MODULE:APP]`` runs an ASGI, WSGI or hyperpy app (the built-in demo by
default) in this process or in supervised worker processes; ``get`` and ``post``
are a small curl on the blocking client.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import UsageError
from .fetch import add_fetch_parsers, run_fetch
from .serve import run_serve
from .serve_args import add_serve_parser

__all__ = ["UsageError", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(arguments)
    try:
        if args.command == "serve":
            return run_serve(args, arguments)
        if args.command in ("get", "post"):
            return run_fetch(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parser.print_help(sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="hyperpy", description="HTTP/1.1 and HTTP/2 client and server."
    )
    parser.add_argument("--version", action="version", version=f"hyperpy {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_serve_parser(commands)
    add_fetch_parsers(commands)
    return parser
