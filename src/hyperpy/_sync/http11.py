# GENERATED from src/hyperpy/_async/http11.py by scripts/unasync.py: do not edit.
"""A client HTTP/1.1 connection: one exchange at a time over one stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h11

from .._backends import SyncShield, SyncStream
from .._config import Timeout
from .._core.h1 import COALESCE_LIMIT, NEED_DATA, H1Client, body_framing, coalesce
from .._exceptions import (
    ReadError,
    RemoteProtocolError,
    WriteError,
)
from .._models import Headers, Request, Response


class ConnectionNotUsed(RemoteProtocolError):
    """A reused connection was closed by the server before it saw any of the request.

    The request was provably not processed, so the pool may retry it elsewhere.
    """


class SyncHTTP11Connection:
    """Sends requests and reads responses over one HTTP/1.1 connection."""

    multiplexed = False

    def __init__(self, stream: SyncStream, *, reused: bool = False) -> None:
        self._stream = stream
        self._h1 = H1Client()
        self._closed = False
        self.requests = 0  # exchanges started here; >0 means the connection was reused

    @property
    def is_closed(self) -> bool:
        return self._closed

    def is_stale(self) -> bool:
        """An idle connection with readable bytes or EOF was closed (or broken) by the
        server: bytes on an idle connection are never the answer to the next request."""
        return self._closed or self._stream.is_readable()

    def handle_request(self, request: Request, timeout: Timeout, release: Release) -> Response:
        """Send ``request`` and return the response once its head has arrived.

        The body streams from the connection; ``release`` is called exactly once,
        when the body is finished or abandoned, saying whether the connection can
        be reused.
        """
        reused = self.requests > 0
        self.requests += 1
        try:
            try:
                self._send_request(request, timeout)
            except WriteError:
                # The server may have answered early (e.g. 413) and stopped reading:
                # its response, if any, is what the caller should see.
                head = self._receive_head(timeout, reused=False)
            else:
                head = self._receive_head(timeout, reused=reused)
        except BaseException:
            release(self, False)
            self.close()
            raise
        response = Response(
            head.status_code,
            headers=Headers.from_raw(list(head.headers)),
            reason=head.reason.decode("latin-1"),
            http_version=head.http_version.decode("ascii"),
            request=request,
        )
        body = SyncHTTP11Body(self, timeout, release, response)
        if request.method == "HEAD" or head.status_code in (204, 304):
            body.finish_empty()
        else:
            response._stream = body
        return response

    def _send_request(self, request: Request, timeout: Timeout) -> None:
        h1 = self._h1
        headers = request.headers.raw
        content = request._content
        if request.is_streaming:
            length = None
        else:
            content = content or b""
            length = len(content) if (content or request.method not in ("GET", "HEAD")) else None
        head = h1.start_request(
            request.method.encode("ascii"),
            request.url.target.encode("ascii"),
            body_framing(headers, length, allow_chunked=request.is_streaming),
        )
        send = self._stream.send_all
        if content is not None:
            pieces = h1.body(content) if content else []
            tail = h1.end_request()
            if len(content) <= COALESCE_LIMIT:
                send(b"".join([head, *pieces, tail]), timeout.write)
            else:
                send(head, timeout.write)
                for piece in pieces:
                    send(piece, timeout.write)
                if tail:
                    send(tail, timeout.write)
            return
        send(head, timeout.write)
        for chunk in request.iter_bytes():
            for piece in coalesce(h1.body(chunk)):
                send(piece, timeout.write)
        send(h1.end_request(request.trailers.raw or None), timeout.write)

    def _receive_head(self, timeout: Timeout, *, reused: bool) -> h11.Response:
        h1 = self._h1
        got_bytes = False
        while True:
            event = h1.next_event()
            if event is NEED_DATA:
                data = self._receive(timeout)
                if not data and not got_bytes:
                    if reused:
                        raise ConnectionNotUsed("the server closed the kept-alive connection")
                    raise RemoteProtocolError("the server closed the connection without a response")
                got_bytes = got_bytes or bool(data)
                h1.receive(data)
            elif type(event) is h11.Response:
                return event
            elif type(event) is h11.InformationalResponse:
                continue  # 100 Continue and friends: the final response follows
            elif type(event) is h11.ConnectionClosed:
                raise RemoteProtocolError("the server closed the connection without a response")
            else:  # pragma: no cover - h11 yields nothing else here
                raise RemoteProtocolError(f"unexpected event {event!r}")

    def _receive(self, timeout: Timeout) -> bytes:
        try:
            return self._stream.receive(65536, timeout.read)
        except ReadError:
            if self._h1.response_complete:
                return b""
            raise

    def next_body_event(self, timeout: Timeout) -> h11.Data | h11.EndOfMessage:
        h1 = self._h1
        while True:
            event = h1.next_event()
            if event is NEED_DATA:
                h1.receive(self._receive(timeout))
            elif type(event) is h11.Data or type(event) is h11.EndOfMessage:
                return event
            elif type(event) is h11.ConnectionClosed:
                raise RemoteProtocolError("the server closed the connection mid-body")
            else:  # pragma: no cover
                raise RemoteProtocolError(f"unexpected event {event!r}")

    def try_reuse(self) -> bool:
        return not self._closed and self._h1.try_reuse()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._stream.close()


class SyncHTTP11Body:
    """A response body read from the connection chunk by chunk."""

    def __init__(
        self,
        conn: SyncHTTP11Connection,
        timeout: Timeout,
        release: Release,
        response: Response,
    ) -> None:
        self._conn = conn
        self._timeout = timeout
        self._release: Release | None = release
        self._response = response

    def __iter__(self) -> SyncHTTP11Body:
        return self

    def __next__(self) -> bytes:
        if self._release is None:
            raise StopIteration
        try:
            event = self._conn.next_body_event(self._timeout)
        except BaseException:
            self._abandon()
            raise
        if isinstance(event, h11.Data):
            return bytes(event.data)
        if event.headers:
            self._response.trailers = Headers.from_raw(list(event.headers))
        self._finish(self._conn.try_reuse())
        raise StopIteration

    def finish_empty(self) -> None:
        """A body the protocol says is empty (HEAD, 204, 304): consume its end now."""
        try:
            self._conn.next_body_event(self._timeout)
        except BaseException:
            self._abandon()
            raise
        self._finish(self._conn.try_reuse())

    def _finish(self, reusable: bool) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        to_close = release(self._conn, reusable)  # bookkeeping first: it cannot be cut short
        if to_close:
            with SyncShield(1.0):
                for conn in to_close:
                    conn.close()

    def _abandon(self) -> None:
        # Part of the body is unread: the connection is mid-message, never reusable.
        self._finish(False)

    def close(self) -> None:
        self._abandon()


# Called once per exchange with (connection, reusable): the pool's bookkeeping, which
# cannot be interrupted, returns the connections that must now be closed.
Release = Callable[[Any, bool], list[Any]]
