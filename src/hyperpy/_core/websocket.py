"""WebSocket (RFC 6455), sans-IO: the opening handshake's checks and fields, and the
frame layer (wsproto's) with hyperpy's rules on top: whole messages assembled
under a size limit, pings answered, the closing handshake tracked.

The opening handshake rides on hyperpy's own HTTP/1.1 code (the server's 101,
the client's GET with ``Upgrade: websocket``); only the frames after it go
through wsproto, which is named here only.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from typing import Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError as WsLocalError
from wsproto.utilities import RemoteProtocolError as WsRemoteError

from .._exceptions import WebSocketClosed, WebSocketError, WebSocketHandshakeError

Fields = list[tuple[bytes, bytes]]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE_SIZE = 1024 * 1024  # the default; websockets and uvicorn use 1 MiB too

NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
NO_STATUS = 1005
ABNORMAL_CLOSURE = 1006
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011


def accept_token(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` value for a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.strip() + _GUID).digest())


def new_key() -> bytes:
    """A fresh ``Sec-WebSocket-Key``."""
    return base64.b64encode(os.urandom(16))


def _tokens(value: bytes) -> set[bytes]:
    return {token.strip().lower() for token in value.split(b",")}


def websocket_key(method: str, http_version: str, headers: Fields) -> bytes | None:
    """The client's key if this request opens a WebSocket (RFC 6455 §4.2.1), else None."""
    if method != "GET" or http_version != "1.1":
        return None
    upgrade = connection = key = version = None
    for name, value in headers:
        if name == b"upgrade":
            upgrade = value
        elif name == b"connection":
            connection = value if connection is None else connection + b"," + value
        elif name == b"sec-websocket-key":
            key = value
        elif name == b"sec-websocket-version":
            version = value
    if upgrade is None or connection is None or key is None:
        return None
    if b"websocket" not in _tokens(upgrade) or b"upgrade" not in _tokens(connection):
        return None
    if version is None or version.strip() != b"13":
        return None
    try:
        if len(base64.b64decode(key.strip(), validate=True)) != 16:
            return None
    except ValueError:
        return None
    return key


def offered_subprotocols(headers: Fields) -> list[str]:
    """The subprotocols the client offered, in its order."""
    offered: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            offered += [t.strip().decode("latin-1") for t in value.split(b",") if t.strip()]
    return offered


def accept_fields(key: bytes, subprotocol: str | None, extra: Fields | None = None) -> Fields:
    """The fields of the server's 101 that accepts a WebSocket."""
    fields = [
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-accept", accept_token(key)),
    ]
    if subprotocol is not None:
        fields.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
    return fields + list(extra or [])


def request_fields(key: bytes, subprotocols: list[str] | None) -> Fields:
    """The fields a client adds to its GET to open a WebSocket."""
    fields = [
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", key),
        (b"sec-websocket-version", b"13"),
    ]
    if subprotocols:
        fields.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode("latin-1")))
    return fields


def check_accept(
    status: int, headers: Fields, key: bytes, subprotocols: list[str] | None
) -> str | None:
    """Check the server's answer to our opening handshake; return the chosen
    subprotocol. Raise ``WebSocketHandshakeError`` if it did not accept."""
    if status != 101:
        raise WebSocketHandshakeError(
            f"the server answered {status} instead of switching to WebSocket", status=status
        )
    values = {name: value for name, value in headers}
    if b"websocket" not in _tokens(values.get(b"upgrade", b"")):
        raise WebSocketHandshakeError("the server's 101 does not upgrade to websocket", status=101)
    if values.get(b"sec-websocket-accept", b"").strip() != accept_token(key):
        raise WebSocketHandshakeError("the server's Sec-WebSocket-Accept is wrong", status=101)
    chosen = values.get(b"sec-websocket-protocol")
    if chosen is None:
        return None
    name = chosen.strip().decode("latin-1")
    if not subprotocols or name not in subprotocols:
        raise WebSocketHandshakeError(
            f"the server chose a subprotocol not offered: {name!r}", status=101
        )
    return name


@dataclass(frozen=True)
class Closed:
    """The peer closed (or the connection ended): ``code`` and ``reason`` as received."""

    code: int
    reason: str


class WebSocketProtocol:
    """One WebSocket's frames after the opening handshake.

    ``receive`` takes bytes from the peer and returns what they completed: whole
    messages (``str`` or ``bytes``), ``Closed`` once, and pong payloads are
    dropped; replies it owes (pongs, the close echo) wait in ``data_to_send``.

    It stops after the first whole message: the frames behind it wait for
    ``receive_buffered``, called once the application has taken that message, so
    a protocol error after it neither cuts it off nor forbids its answer (RFC 6455
    processes frames in order; Autobahn's 3.x, 4.x and 5.15 check it).
    """

    def __init__(
        self, *, client_side: bool, max_message_size: int = MAX_MESSAGE_SIZE, initial: bytes = b""
    ) -> None:
        kind = ConnectionType.CLIENT if client_side else ConnectionType.SERVER
        self._ws = Connection(kind)
        self._max = max_message_size
        self._parts: list[bytes | str] = []
        self._size = 0
        self._out: list[bytes] = []
        self.closed: Closed | None = None  # set once the closing handshake is done or broken
        self.close_sent = False
        if initial:
            self._ws.receive_data(initial)  # bytes that came right after the handshake

    @property
    def open(self) -> bool:
        return self._ws.state is ConnectionState.OPEN

    def receive(self, data: bytes) -> list[str | bytes | Closed]:
        """Feed the peer's bytes (``b""``: the connection ended)."""
        if not data:
            if self.closed is None:
                self.closed = Closed(ABNORMAL_CLOSURE, "the connection ended without a close frame")
                return [self.closed]
            return []
        try:
            self._ws.receive_data(data)
        except WsRemoteError as exc:
            return [self._fail(PROTOCOL_ERROR, f"the peer broke the protocol: {exc}")]
        return self._events()

    def receive_buffered(self) -> list[str | bytes | Closed]:
        """What the bytes already fed complete after the last message returned."""
        if self.closed is not None:
            return []
        return self._events()

    def _events(self) -> list[str | bytes | Closed]:
        out: list[str | bytes | Closed] = []
        for event in self._ws.events():
            if isinstance(event, Message):
                self._size += len(event.data)
                if self._size > self._max:
                    out.append(self._fail(MESSAGE_TOO_BIG, f"a message over {self._max} bytes"))
                    break
                self._parts.append(event.data)
                if event.message_finished:
                    out.append(self._assemble(event))
                    break  # the frames behind it wait for receive_buffered
            elif isinstance(event, Ping):
                self._send(event.response())
            elif isinstance(event, Pong):
                pass
            elif isinstance(event, CloseConnection):
                if self._ws.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
                    # No close frame came: wsproto reports a broken frame this way
                    # (1002, or 1007 for text that is not UTF-8). Fail the connection
                    # with that code, which RFC 6455 §7.1.7 says to send.
                    out.append(self._fail(event.code, event.reason or ""))
                    break
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    self._send(event.response())  # echo it: the closing handshake
                self.closed = Closed(int(event.code), event.reason or "")
                out.append(self.closed)
                break
        return out

    def _assemble(self, event: Message[Any]) -> str | bytes:
        parts, self._parts, self._size = self._parts, [], 0
        if isinstance(event, TextMessage):
            return "".join(part for part in parts if isinstance(part, str))
        return b"".join(part for part in parts if isinstance(part, bytes))

    def _fail(self, code: int, reason: str) -> Closed:
        """Close with ``code`` because of the peer; report it as closed."""
        if self._ws.state is ConnectionState.OPEN:
            self._send(CloseConnection(code=code, reason=reason[:120]))
            self.close_sent = True
        self.closed = Closed(int(code), reason)  # a plain int, never wsproto's enum
        return self.closed

    def _send(self, event: TextMessage | BytesMessage | Ping | Pong | CloseConnection) -> None:
        try:
            self._out.append(self._ws.send(event))
        except WsLocalError as exc:
            raise WebSocketError(f"cannot send on this WebSocket: {exc}") from None

    def send_message(self, data: str | bytes) -> None:
        """Queue a message (text for ``str``, binary for ``bytes``)."""
        self._check_open()
        if isinstance(data, str):
            self._send(TextMessage(data=data))
        elif isinstance(data, (bytes, bytearray, memoryview)):
            self._send(BytesMessage(data=bytes(data)))
        else:
            raise TypeError(f"a WebSocket message is str or bytes, not {type(data).__name__}")

    def ping(self, payload: bytes = b"") -> None:
        self._check_open()
        self._send(Ping(payload=payload))

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Queue our close frame (once); the peer's echo completes the handshake."""
        if self.close_sent or self._ws.state is not ConnectionState.OPEN:
            return
        self._send(CloseConnection(code=code, reason=reason))
        self.close_sent = True

    def _check_open(self) -> None:
        if self.closed is not None:
            raise WebSocketClosed(
                f"the WebSocket is closed ({self.closed.code}: {self.closed.reason})",
                code=self.closed.code,
                reason=self.closed.reason,
            )
        if self.close_sent:
            raise WebSocketClosed("the WebSocket is closing", code=NORMAL_CLOSURE, reason="")

    def data_to_send_pending(self) -> bool:
        return bool(self._out)

    def data_to_send(self) -> bytes:
        out, self._out = self._out, []
        return b"".join(out)
