"""Serve an ASGI 3 application (Starlette, FastAPI, Quart on trio, ...) on the trio
``hyperpy.AsyncServer``, over HTTP/1.1 and HTTP/2, with WebSockets over HTTP/1.1::

    from hyperpy import AsyncServer
    from hyperpy.asgi import ASGIAdapter

    server = AsyncServer(ASGIAdapter(app), port=8000)

What is supported: the ``http`` scope (request bodies streamed, ``http.disconnect``,
streamed responses, the ``http.response.trailers`` extension), the ``lifespan``
protocol (a failed startup stops the server with the app's message), and the
``websocket`` scope (with the ``websocket.http.response`` extension to refuse
with a response). The app runs under trio: apps built on anyio (Starlette,
FastAPI) work as they are; an app that needs asyncio fails with a clear message.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import unquote

import trio

from ._exceptions import WebSocketClosed
from ._models import Headers, Request, Response

__all__ = ["ASGIAdapter"]

logger = logging.getLogger("hyperpy.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ASGI = {"version": "3.0", "spec_version": "2.4"}
# Body chunks the app may send ahead of the client reading them.
_BODY_BUFFER = 8
_ASYNCIO_HINT = (
    "this ASGI app needs asyncio, but hyperpy serves ASGI apps on trio: apps built on"
    " anyio (Starlette, FastAPI) work; pure-asyncio ones need an asyncio server"
)


def _asyncio_only(exc: BaseException) -> bool:
    """Whether ``exc`` says the app looked for an asyncio event loop and found trio."""
    text = f"{type(exc).__name__}: {exc}"
    return any(
        marker in text
        for marker in ("no running event loop", "AsyncLibraryNotFoundError", "asyncio")
    )


class LifespanFailed(RuntimeError):
    """The app's lifespan startup failed: the server does not start."""


class ASGIAdapter:
    """An ASGI 3 app as a hyperpy handler (with the server's ``lifespan`` hook).

    ``root_path`` is where the app is mounted (a reverse proxy's prefix): it is
    ``scope["root_path"]`` and the start of ``scope["path"]``. ``lifespan``:
    "auto" runs the lifespan protocol if the app supports it, "on" requires it,
    "off" skips it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        root_path: str = "",
        lifespan: Literal["auto", "on", "off"] = "auto",
    ) -> None:
        self.app = app
        self.root_path = root_path.rstrip("/")
        self.lifespan_mode = lifespan
        self.state: dict[str, Any] = {}  # shared with the app through scope["state"]
        self._spawn: Callable[..., Any] | None = None

    # -- lifespan ---------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self, spawn: Callable[..., Any]) -> AsyncIterator[None]:
        """The server's hook: run the app's lifespan protocol around serving, and
        keep ``spawn`` to run each request's app task beside the server."""
        self._spawn = spawn
        if self.lifespan_mode == "off":
            yield
            return
        to_app, app_inbox = trio.open_memory_channel[Message](2)
        to_server, server_inbox = trio.open_memory_channel[Message](2)
        finished = trio.Event()
        failure: list[BaseException] = []
        # Shielded: a server that runs out of grace cancels its tasks, but the app's
        # shutdown must still run (it is cancelled below only if it overstays).
        protected = trio.CancelScope(shield=True)

        async def run() -> None:
            scope = {"type": "lifespan", "asgi": _ASGI, "state": self.state}
            try:
                with protected:
                    await self.app(scope, app_inbox.receive, to_server.send)
            except BaseException as exc:
                failure.append(exc)
                if not isinstance(exc, Exception):
                    raise
            finally:
                finished.set()
                await to_server.aclose()

        spawn(run)
        await to_app.send({"type": "lifespan.startup"})
        try:
            reply = await self._lifespan_reply(server_inbox, failure, "startup")
        except BaseException:
            protected.cancel()
            raise
        if reply is None:
            yield  # the app does not speak lifespan ("auto")
            return
        try:
            yield
        finally:
            # The server runs this shielded and bounded by its ``lifespan_timeout``;
            # an app still in its shutdown when that runs out is stopped.
            try:
                await to_app.send({"type": "lifespan.shutdown"})
                await self._lifespan_reply(server_inbox, failure, "shutdown")
                await finished.wait()
            finally:
                protected.cancel()

    async def _lifespan_reply(
        self,
        inbox: trio.MemoryReceiveChannel[Message],
        failure: list[BaseException],
        step: str,
    ) -> Message | None:
        try:
            message = await inbox.receive()
        except trio.EndOfChannel:
            # The app returned or raised without answering: it has no lifespan.
            error = failure[0] if failure else None
            if error is not None and _asyncio_only(error):
                raise LifespanFailed(_ASYNCIO_HINT) from error
            if self.lifespan_mode == "on" or (step == "shutdown" and error is not None):
                raise LifespanFailed(
                    f"the ASGI app failed its lifespan {step}: {error!r}"
                ) from error
            if error is not None:
                logger.debug("the ASGI app does not support lifespan: %r", error)
            return None
        if message.get("type") == f"lifespan.{step}.failed":
            raise LifespanFailed(
                f"the ASGI app's lifespan {step} failed: {message.get('message', '')}"
            )
        return message

    # -- requests ---------------------------------------------------------------------

    def _scope(self, request: Request, kind: str) -> Scope:
        url = request.url
        path = unquote(url.path)
        root = self.root_path
        if root and path != root and not path.startswith(root + "/"):
            path = root + path  # a proxy that stripped the prefix (not /application for /app)
        secure = url.scheme == "https"
        return {
            "type": kind,
            "asgi": _ASGI,
            "http_version": request.http_version,
            "scheme": ("wss" if secure else "ws") if kind == "websocket" else url.scheme,
            "path": path,
            "raw_path": url.path.encode("ascii"),
            "query_string": url.query.encode("ascii"),
            "root_path": self.root_path,
            "headers": [(name, value) for name, value in request.headers.raw],
            "client": request.client,
            "server": (url.host, url.port),
            "state": dict(self.state),
        }

    async def __call__(self, request: Request) -> Response:
        if request.upgrade is not None:
            return await _WebSocketSession(self, request).run()
        return await _HTTPExchange(self, request).run()


class _HTTPExchange:
    """One HTTP request through the app: the app runs as a task beside the server,
    so that the handler can return the response as soon as it starts."""

    def __init__(self, adapter: ASGIAdapter, request: Request) -> None:
        self.adapter = adapter
        self.request = request
        self.started = trio.Event()
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.wants_trailers = False
        self.trailers: list[tuple[bytes, bytes]] = []  # filled as the app sends them
        self.body_out, self.body_in = trio.open_memory_channel[bytes](_BODY_BUFFER)
        self.disconnected = trio.Event()
        self.done = trio.Event()
        self.error: BaseException | None = None
        self.scope = trio.CancelScope()
        self._body = request.aiter_bytes()
        self._body_done = False
        self.body_read = False  # the server began to read the response body
        self.body_ended = False  # the app sent the last of its body

    async def run(self) -> Response:
        spawn = self.adapter._spawn
        if spawn is None:
            raise RuntimeError("ASGIAdapter must be served by hyperpy.AsyncServer")
        spawn(self._run_app)
        try:
            await self._wait_started()
        except BaseException:
            # The handler was cancelled (the client reset its stream): so is the app.
            self.disconnected.set()
            self.scope.cancel()
            raise
        if not self.started.is_set():
            return self._failure()
        response = Response(
            self.status, headers=self.headers, content=_ResponseBody(self), request=self.request
        )
        # The server reads trailers after the body: share the list the app fills.
        response.trailers = Headers.from_raw(self.trailers)
        return response

    async def _wait_started(self) -> None:
        async with trio.open_nursery() as nursery:

            async def watch(event: trio.Event) -> None:
                await event.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch, self.started)
            nursery.start_soon(watch, self.done)

    def _failure(self) -> Response:
        self.disconnected.set()
        if self.error is not None and _asyncio_only(self.error):
            logger.error("%s (%s %s)", _ASYNCIO_HINT, self.request.method, self.request.url)
        elif self.error is None:
            logger.error("the ASGI app returned without a response to %s", self.request.url)
        return Response(500, text="Internal Server Error\n")

    async def _run_app(self) -> None:
        scope = self.adapter._scope(self.request, "http")
        scope["method"] = self.request.method
        scope["extensions"] = {"http.response.trailers": {}}
        try:
            with self.scope:
                await self.adapter.app(scope, self._receive, self._send)
        except Exception as exc:
            self.error = exc
            if self.started.is_set():
                logger.exception("the ASGI app failed while streaming %s", self.request.url)
            else:
                logger.exception("the ASGI app failed on %s", self.request.url)
        finally:
            self.done.set()
            await self.body_out.aclose()  # the end of the body, however the app ended

    async def _receive(self) -> Message:
        if not self._body_done and not self.disconnected.is_set():
            try:
                chunk = await self._body.__anext__()
                return {"type": "http.request", "body": chunk, "more_body": True}
            except StopAsyncIteration:
                self._body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            except Exception:
                self.disconnected.set()  # the request body broke: the client is gone
        await self.disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if self.disconnected.is_set():
            return  # the client is gone: what the app still sends goes nowhere
        if kind == "http.response.start":
            if self.started.is_set():
                raise RuntimeError("http.response.start sent twice")
            self.status = int(message["status"])
            self.headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", [])]
            self.wants_trailers = bool(message.get("trailers", False))
            self.started.set()
        elif kind == "http.response.body":
            if not self.started.is_set():
                raise RuntimeError("http.response.body sent before http.response.start")
            body = bytes(message.get("body", b""))
            if body:
                await self.body_out.send(body)
            if not message.get("more_body", False) and not self.wants_trailers:
                self.body_ended = True
                await self.body_out.aclose()
        elif kind == "http.response.trailers":
            self.trailers += [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", [])]
            if not message.get("more_trailers", False):
                self.body_ended = True
                await self.body_out.aclose()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} in an http scope")

    async def _stream_body(self) -> AsyncGenerator[bytes, None]:
        self.body_read = True
        complete = False
        try:
            async with self.body_in:
                async for chunk in self.body_in:
                    yield chunk
            complete = self.error is None
            if self.error is not None:
                raise RuntimeError("the ASGI app failed mid-response") from self.error
        finally:
            # Finished, or abandoned (the client went away): the app hears
            # http.disconnect, and is cancelled if it was still running.
            self.disconnected.set()
            if not complete:
                self.scope.cancel()


class _ResponseBody:
    """The app's response body as the server reads it.

    Closing it ends the exchange even when the server never read it (a HEAD, or a
    client gone before the body): a generator never started skips its ``finally``,
    and the app would wait forever to send a body nobody reads.
    """

    def __init__(self, exchange: _HTTPExchange) -> None:
        self._exchange = exchange
        self._chunks = exchange._stream_body()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        await self._chunks.aclose()
        exchange = self._exchange
        if not exchange.body_read:
            # The app hears http.disconnect; one still sending its body is cancelled.
            exchange.disconnected.set()
            if not exchange.body_ended:
                exchange.scope.cancel()


class _WebSocketSession:
    """One WebSocket through the app, run within the handler."""

    def __init__(self, adapter: ASGIAdapter, request: Request) -> None:
        self.adapter = adapter
        self.request = request
        self.offer = request.upgrade
        self.ws: Any = None
        self.connected = False
        self.closed = False
        self.denial: Response | None = None

    async def run(self) -> Response:
        scope = self.adapter._scope(self.request, "websocket")
        scope["subprotocols"] = list(self.offer.subprotocols)
        scope["extensions"] = {"websocket.http.response": {}}
        try:
            await self.adapter.app(scope, self._receive, self._send)
        except Exception as exc:
            if _asyncio_only(exc):
                logger.error("%s (%s)", _ASYNCIO_HINT, self.request.url)
            else:
                logger.exception("the ASGI app failed on WebSocket %s", self.request.url)
            if self.ws is not None:
                await self.ws.close(1011)
                return Response(200)
            return Response(500, text="Internal Server Error\n")
        if self.ws is not None:
            await self.ws.close()
            return Response(200)
        return self.denial or Response(403, text="WebSocket refused\n")

    async def _receive(self) -> Message:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        if self.ws is None or self.closed:
            return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        try:
            message = await self.ws.receive()
        except WebSocketClosed as exc:
            self.closed = True
            return {"type": "websocket.disconnect", "code": exc.code, "reason": exc.reason}
        if isinstance(message, str):
            return {"type": "websocket.receive", "text": message}
        return {"type": "websocket.receive", "bytes": message}

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "websocket.accept":
            headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", [])]
            self.ws = await self.offer.accept_websocket(message.get("subprotocol"), headers=headers)
        elif kind == "websocket.send":
            if self.ws is None:
                raise RuntimeError("websocket.send before websocket.accept")
            text = message.get("text")
            await self.ws.send(text if text is not None else bytes(message.get("bytes") or b""))
        elif kind == "websocket.close":
            if self.ws is None:
                self.denial = Response(403, text="WebSocket refused\n")
            else:
                self.closed = True
                await self.ws.close(int(message.get("code", 1000)), message.get("reason") or "")
        elif kind == "websocket.http.response.start":
            self.denial = Response(
                int(message["status"]),
                headers=[(bytes(n), bytes(v)) for n, v in message.get("headers", [])],
            )
        elif kind == "websocket.http.response.body":
            if self.denial is not None:
                self.denial._content = (self.denial._content or b"") + bytes(
                    message.get("body", b"")
                )
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} in a websocket scope")
