"""Serve a WSGI (PEP 3333) application with the blocking ``hyperpy.Server``.

``WSGIAdapter`` turns a WSGI app into a ``def handler(request) -> Response``::

    server = hyperpy.Server(WSGIAdapter(flask_app), port=8000)
    server.serve_forever()

It speaks to the app over HTTP/1.1 and HTTP/2 alike: the request body streams
into ``wsgi.input`` as the app reads it, and the app's iterable streams out as
the server sends it, its ``close()`` called exactly once whatever happens.

Bytes given to the legacy ``write()`` callable are buffered until the app
returns its iterable, then sent before the iterable's own bytes.

Besides the PEP 3333 and CGI keys, ``environ["hyperpy.request"]`` is the
``hyperpy.Request`` itself (its raw headers, its trailers once the body is read).
"""

from __future__ import annotations

import logging
import re
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import IO, Any, Protocol, TextIO, Union
from urllib.parse import unquote_to_bytes

from ._exceptions import TransportError
from ._models import Request, Response
from ._version import __version__

__all__ = ["FileWrapper", "StartResponse", "WSGIAdapter", "WSGIApp", "WSGIInput"]

logger = logging.getLogger("hyperpy.wsgi")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType]
OptExcInfo = Union[ExcInfo, tuple[None, None, None]]
Environ = dict[str, Any]


class StartResponse(Protocol):
    """The ``start_response`` callable an app is given (PEP 3333)."""

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = ...,
        /,
    ) -> Callable[[bytes], object]: ...


WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

# Connection-specific fields (RFC 9110 §7.6.1): the server frames the body and
# manages the connection itself, so an app's say on them is dropped.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade"}
)
_STATUS = re.compile(r"([1-9][0-9][0-9]) ([^\x00-\x08\x0a-\x1f\x7f]*)\Z")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ERROR_BODY = b"Internal Server Error\n"


class WSGIInput:
    """``wsgi.input``: the request body, pulled from the connection only as it is read.

    Nothing is read ahead: each read takes just the chunks it needs, so a client
    sending a large body is held back by the app's pace (backpressure).
    """

    def __init__(self, request: Request) -> None:
        self._request = request
        self._chunks: Iterator[bytes] | None = None
        self._buffer = bytearray()
        self._eof = False

    def _more(self) -> bool:
        """Append the next chunk of the body to the buffer; False at its end."""
        if self._eof:
            return False
        if self._chunks is None:
            self._chunks = self._request.iter_bytes()
        chunk = next(self._chunks, None)
        if chunk is None:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (fewer only at the end); all that is left if negative."""
        if size is None or size < 0:
            while self._more():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._more():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        """One line, its ``\\n`` included; at most ``size`` bytes if given."""
        limit = -1 if size is None else size
        searched = 0
        while True:
            newline = self._buffer.find(b"\n", searched)
            if newline >= 0:
                end = newline + 1
                break
            if 0 <= limit <= len(self._buffer):
                end = limit
                break
            searched = len(self._buffer)
            if not self._more():
                end = len(self._buffer)
                break
        return self._take(end if limit < 0 else min(end, limit))

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """The remaining lines; stop once they total ``hint`` bytes, if positive."""
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> WSGIInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class FileWrapper:
    """``wsgi.file_wrapper``: streams a file-like object in blocks, then closes it."""

    def __init__(self, filelike: IO[bytes], block_size: int = 64 * 1024) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.block_size)
        if not data:
            raise StopIteration
        return data

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class _Exchange:
    """One request's ``start_response``/``write`` state."""

    def __init__(self) -> None:
        self.status: tuple[int, str] | None = None
        self.headers: list[tuple[str, str]] = []
        # Set once the head is handed to the server, or the app used write(): from
        # then on start_response(exc_info=...) can only re-raise (PEP 3333).
        self.headers_sent = False
        self.finished = False  # the body has ended: write() may no longer add to it
        self.writes: deque[bytes] = deque()

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
        /,
    ) -> Callable[[bytes], object]:
        if exc_info is not None and exc_info[1] is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # the traceback raised holds this frame: no cycle through it
        elif self.status is not None:
            raise RuntimeError(
                "start_response() called a second time without exc_info "
                "(only an error response may replace the headers)"
            )
        parsed = _check_status(status)
        checked = _check_headers(headers)
        self.status, self.headers = parsed, checked
        return self.write

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise RuntimeError("write() called before start_response()")
        if not isinstance(data, bytes):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        if self.finished:
            raise RuntimeError("write() called after the response ended")
        self.headers_sent = True
        if data:
            self.writes.append(data)


def _check_status(status: object) -> tuple[int, str]:
    if not isinstance(status, str):
        raise TypeError(f"the status must be a str, not {type(status).__name__}")
    match = _STATUS.match(status)
    if match is None:
        raise ValueError(f"the status must look like '200 OK': {status!r}")
    code, reason = int(match[1]), match[2]
    if code < 200:
        raise ValueError(f"a WSGI app cannot answer with an informational status: {status!r}")
    try:
        reason.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"the status is not latin-1: {status!r}") from None
    return code, reason


def _check_headers(headers: object) -> list[tuple[str, str]]:
    if not isinstance(headers, list):
        raise TypeError(f"the headers must be a list, not {type(headers).__name__}")
    checked = []
    for item in headers:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(f"each header must be a (name, value) tuple: {item!r}")
        name, value = item
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"header names and values must be str: {item!r}")
        if not _TOKEN.match(name):
            raise ValueError(f"invalid header name: {name!r}")
        if _BAD_VALUE.search(value):
            raise ValueError(f"control character (CR, LF, ...) in the value of {name!r}")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"the value of {name!r} is not latin-1: {value!r}") from None
        # Whitespace around a value is not part of it, and the parser refuses it.
        checked.append((name, value.strip(" \t")))
    return checked


def _check_chunk(chunk: object) -> bytes:
    if not isinstance(chunk, bytes):
        raise TypeError(f"the application's iterable must yield bytes, not {type(chunk).__name__}")
    return chunk


def _close(iterable: object, request: Request) -> None:
    """Call the app iterable's close(), if it has one; its failure is only logged,
    as the response is over by then."""
    close = getattr(iterable, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:
        logger.exception(
            "the WSGI application's close() failed for %s %s", request.method, request.url
        )


class _ResponseBody:
    """The app's iterable as a ``Response`` stream: pulled one chunk per send, with
    ``write()`` output kept in order before it, and closed exactly once."""

    def __init__(
        self,
        exchange: _Exchange,
        result: Iterable[bytes],
        iterator: Iterator[bytes],
        prefetched: list[bytes],
        request: Request,
    ) -> None:
        self._exchange = exchange
        self._result = result
        self._iterator = iterator
        self._prefetched = deque(prefetched)
        self._request = request
        self._exhausted = False
        self._closed = False

    def __iter__(self) -> _ResponseBody:
        return self

    def __next__(self) -> bytes:
        exchange = self._exchange
        while True:
            if exchange.writes:
                return exchange.writes.popleft()
            if self._prefetched:
                return self._prefetched.popleft()
            if self._exhausted or self._closed:
                exchange.finished = True
                raise StopIteration
            try:
                chunk = _check_chunk(next(self._iterator))
            except StopIteration:
                self._exhausted = True
                continue  # the last step may have called write()
            except TransportError:
                self._exhausted = True
                raise  # the app's read of the request failed: the connection's affair
            except Exception:
                self._exhausted = True
                request = self._request
                logger.exception(
                    "the WSGI application failed mid-response for %s %s",
                    request.method,
                    request.url,
                )
                raise  # the server cuts the response short: the honest signal
            if chunk:
                self._prefetched.append(chunk)  # after what write() added meanwhile

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._exchange.finished = True
        _close(self._result, self._request)

    def __del__(self) -> None:
        # A safety net: the server closes every response it sends, but one dropped
        # before its head went out (the client gone already) is closed here.
        self.close()


class WSGIAdapter:
    """A ``hyperpy.Server`` handler that runs the WSGI application ``app``.

    ``root_path`` is the prefix the app is mounted at: it becomes ``SCRIPT_NAME``
    and is taken off the front of ``PATH_INFO`` where the path has it (a path
    without it, as from a proxy that strips it, is passed whole). ``errors`` is
    ``wsgi.errors`` (default ``sys.stderr``). ``multiprocess`` sets
    ``wsgi.multiprocess``, for a server run in several processes.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        root_path: str = "",
        errors: TextIO | None = None,
        multiprocess: bool = False,
    ) -> None:
        self.app = app
        self.root_path = root_path.rstrip("/")
        self.errors = errors
        self.multiprocess = multiprocess
        # PEP 3333 "bytes as str": the prefix as its UTF-8 bytes, one char per byte,
        # to compare with PATH_INFO and to stand as SCRIPT_NAME.
        self._script_name = self.root_path.encode("utf-8").decode("latin-1")

    def environ(self, request: Request) -> Environ:
        """The WSGI environ for ``request`` (PEP 3333 and the CGI variables)."""
        url = request.url
        path = unquote_to_bytes(url.path).decode("latin-1")
        script = self._script_name
        if script and (path == script or path.startswith(script + "/")):
            path = path[len(script) :]
        environ: Environ = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": script,
            "PATH_INFO": path,
            "QUERY_STRING": url.query,
            "REQUEST_URI": url.target,
            "SERVER_NAME": url.host,
            "SERVER_PORT": str(url.port),
            "SERVER_PROTOCOL": f"HTTP/{request.http_version}",
            "SERVER_SOFTWARE": f"hyperpy/{__version__}",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": url.scheme,
            "wsgi.input": WSGIInput(request),
            "wsgi.input_terminated": True,
            "wsgi.errors": self.errors if self.errors is not None else sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": self.multiprocess,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "hyperpy.request": request,
        }
        client = request.client
        if isinstance(client, tuple) and len(client) >= 2:
            environ["REMOTE_ADDR"] = str(client[0])
            environ["REMOTE_PORT"] = str(client[1])
        for name, value in request.headers.raw:
            text = value.decode("latin-1")
            if name == b"content-type":
                environ["CONTENT_TYPE"] = text
                continue
            if name == b"content-length":
                environ["CONTENT_LENGTH"] = text
                continue
            if b"_" in name:
                # X-User_Id and X-User-Id would both become HTTP_X_USER_ID: a client
                # could pass one off as the other a proxy vetted. Drop the ambiguous one.
                continue
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            if key in environ:
                # Cookie fields join with "; " (HTTP/2 sends one per cookie, RFC 9113
                # §8.2.3); every other repeated field with ", ".
                sep = "; " if name == b"cookie" else ", "
                environ[key] = f"{environ[key]}{sep}{text}"
            else:
                environ[key] = text
        if "HTTP_HOST" not in environ:
            # HTTP/2 carries the host as :authority, which replaces Host.
            environ["HTTP_HOST"] = url.authority
        return environ

    def __call__(self, request: Request) -> Response:
        """Run the app for ``request``: its response, streamed as the app yields it."""
        environ = self.environ(request)
        exchange = _Exchange()
        result: Iterable[bytes] | None = None
        stream: _ResponseBody | None = None
        body = b""
        try:
            result = self.app(environ, exchange.start_response)
            if isinstance(result, (str, bytes)):
                raise TypeError("the application must return an iterable of bytes, not a string")
            if type(result) in (list, tuple):
                # Already in memory: sent whole, so the server sets its length.
                _check_started(exchange)
                body = b"".join([*exchange.writes, *map(_check_chunk, result)])
                exchange.finished = True
            else:
                stream = _start_stream(exchange, result, request)
                if stream is None:
                    body = b"".join(exchange.writes)  # it ended before any body byte
                    exchange.finished = True
                    done, result = result, None
                    _close(done, request)
            assert exchange.status is not None
            exchange.headers_sent = True
            status, reason = exchange.status
            return Response(
                status,
                headers=_response_fields(exchange.headers),
                content=body if stream is None else stream,
                reason=reason,
            )
        except BaseException as exc:
            if stream is not None:
                stream.close()
            elif result is not None:
                _close(result, request)
            if not isinstance(exc, Exception) or isinstance(exc, TransportError):
                raise  # the request's connection failed, or the server is stopping
            logger.exception("the WSGI application failed for %s %s", request.method, request.url)
            return Response(
                500,
                headers=[(b"content-type", b"text/plain; charset=utf-8")],
                content=_ERROR_BODY,
            )


def _check_started(exchange: _Exchange) -> None:
    if exchange.status is None:
        raise RuntimeError("the application returned without calling start_response()")


def _start_stream(
    exchange: _Exchange, result: Iterable[bytes], request: Request
) -> _ResponseBody | None:
    """The app's iterable as a response stream; None if it ended before any body byte.

    start_response may be called at the first iteration (PEP 3333): pull until it
    has been, and refuse body bytes that come before it.
    """
    iterator = iter(result)
    prefetched: list[bytes] = []
    while exchange.status is None:
        try:
            chunk = _check_chunk(next(iterator))
        except StopIteration:
            _check_started(exchange)  # called in that very step, or never
            return None
        if chunk:
            _check_started(exchange)
            prefetched.append(chunk)
    return _ResponseBody(exchange, result, iterator, prefetched, request)


def _response_fields(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """The app's headers as fields, without the connection-specific ones."""
    dropped = set(_HOP_BY_HOP)
    for name, value in headers:
        if name.lower() == "connection":
            # Fields the Connection header names are connection-specific too.
            dropped.update(option.strip().lower() for option in value.split(","))
    return [
        (name.lower().encode("ascii"), value.encode("latin-1"))
        for name, value in headers
        if name.lower() not in dropped
    ]
