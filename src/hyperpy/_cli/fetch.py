"""``hyperpy get URL`` and ``hyperpy post URL``: a small curl on the blocking client.

The body goes to stdout (or ``-o FILE``) as it arrives, never held whole;
``-i`` writes the status line and headers first. Exit status: 0 for a status
below 400, 1 for 4xx/5xx, 2 when the request failed (``error: ...`` on stderr).
With ``-o FILE`` and stderr on a terminal, a progress line is drawn on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import stat
import sys
from collections.abc import Iterator
from typing import IO, Any

from .._config import Timeout
from .._exceptions import HTTPError
from .._sync.client import Client
from .errors import UsageError
from .progress import Progress

CHUNK = 64 * 1024
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


def add_fetch_parsers(commands: Any) -> None:
    """Add ``get`` and ``post`` to ``commands`` (an argparse subparsers object)."""
    for method in ("get", "post"):
        verb = method.upper()
        parser = commands.add_parser(
            method,
            help=f"{verb} a URL and print the response body",
            description=f"{verb} URL with the blocking client and write the body to stdout "
            "(or -o FILE). Exit status: 0 below 400, 1 for 4xx/5xx, 2 if the request failed.",
        )
        parser.set_defaults(method=verb)
        parser.add_argument("url", metavar="URL")
        parser.add_argument(
            "-H",
            "--header",
            action="append",
            default=[],
            metavar="'NAME: VALUE'",
            help="send this header field (repeatable)",
        )
        parser.add_argument(
            "-d",
            "--data",
            metavar="DATA",
            help="the request body: DATA as it is, @FILE for a file's bytes, @- for stdin"
            if method == "post"
            else "(post only: a GET sends no body)",
        )
        parser.add_argument(
            "-o", "--output", metavar="FILE", help="write the body to FILE ('-': stdout)"
        )
        parser.add_argument(
            "-i", "--include", action="store_true", help="print the status line and headers first"
        )
        parser.add_argument(
            "-L", "--follow", action="store_true", help="follow redirects (at most 20)"
        )
        parser.add_argument(
            "-s", "--silent", action="store_true", help="no progress display with -o"
        )
        parser.add_argument(
            "--http2", action="store_true", help="offer HTTP/2 by ALPN (https:// URLs only)"
        )
        parser.add_argument(
            "--http2-prior-knowledge",
            action="store_true",
            help="speak HTTP/2 straight away (h2c on http:// URLs)",
        )
        parser.add_argument(
            "-k", "--insecure", action="store_true", help="do not verify the server's certificate"
        )
        parser.add_argument(
            "--timeout",
            type=_timeout,
            default=Timeout(5.0),
            metavar="S",
            help="limit for each step (connect, each read, each write) in seconds (default: 5.0)",
        )


def _timeout(text: str) -> Timeout:
    """``--timeout``: seconds for each step, checked as ``Timeout`` checks them."""
    try:
        return Timeout(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_fetch(args: argparse.Namespace) -> int:
    """Send the request; write the response; return the exit status."""
    headers = [_header(text) for text in args.header]
    names = {name.lower() for name, _ in headers}
    content: Any = None
    if args.data is not None:
        if args.method != "POST":
            raise UsageError("-d sends a request body: use `hyperpy post`")
        content, length = _body(args.data)
        if "content-type" not in names:
            headers.append(("content-type", "application/x-www-form-urlencoded"))
        if length is not None and "content-length" not in names:
            headers.append(("content-length", str(length)))
    elif args.method == "POST" and "content-length" not in names:
        content = b""

    to_file = args.output not in (None, "-")
    show_progress = to_file and not args.silent and _is_terminal(sys.stderr)
    out: IO[bytes] = sys.stdout.buffer
    opened: IO[bytes] | None = None
    try:
        with (
            Client(
                timeout=args.timeout,
                verify=not args.insecure,
                http2=args.http2,
                http2_prior_knowledge=args.http2_prior_knowledge,
                follow_redirects=args.follow,
            ) as client,
            client.stream(args.method, args.url, headers=headers, content=content) as response,
        ):
            if args.include:
                sys.stdout.buffer.write(_head(response))
                sys.stdout.buffer.flush()
            if to_file:
                try:
                    opened = out = open(args.output, "wb")  # noqa: SIM115 - closed below
                except OSError as exc:
                    raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
            progress = Progress(sys.stderr, _known_length(response)) if show_progress else None
            for chunk in response.iter_bytes():
                out.write(chunk)
                if progress is not None:
                    progress.advance(len(chunk))
            out.flush()
            if progress is not None:
                progress.finish()
            status: int = response.status
    except HTTPError as exc:
        with contextlib.suppress(OSError):
            out.flush()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``| head``): not our failure. Silence the final flush.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        if opened is not None:
            opened.close()
    return 0 if status < 400 else 1


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not _HEADER_NAME.match(name):
        raise UsageError(f"-H wants 'Name: value', not {text!r}")
    return name, value.strip()


def _body(data: str) -> tuple[Any, int | None]:
    """The body for ``-d`` and its length if known: a file is streamed, not read whole."""
    if not data.startswith("@"):
        encoded = data.encode("utf-8")
        return encoded, len(encoded)
    path = data[1:]
    if path == "-":
        return _chunks(sys.stdin.buffer, close=False), None
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed when the stream ends
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    info = os.fstat(file.fileno())
    length = info.st_size if stat.S_ISREG(info.st_mode) else None
    return _chunks(file, close=True), length


def _chunks(file: IO[bytes], *, close: bool) -> Iterator[bytes]:
    try:
        while chunk := file.read(CHUNK):
            yield chunk
    finally:
        if close:
            file.close()


def _head(response: Any) -> bytes:
    status_line = f"HTTP/{response.http_version} {response.status}"
    if response.http_version != "2" and response.reason:  # HTTP/2 has no reason
        status_line += f" {response.reason}"
    head = [status_line]
    head += [f"{name}: {value}" for name, value in response.headers.multi_items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace")


def _known_length(response: Any) -> int | None:
    """The body's length as it will be written: Content-Length, unless it counts
    encoded bytes the client decodes."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    length = response.headers.get("content-length")
    if encoding != "identity" or length is None or not length.isdigit():
        return None
    return int(length)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
