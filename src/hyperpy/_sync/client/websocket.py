# GENERATED from src/hyperpy/_async/client/websocket.py by scripts/unasync.py: do not edit.
"""Opening a WebSocket from the client: a fresh HTTP/1.1 connection (never pooled),
the opening handshake, then the frames (``WebSocket``)."""

from __future__ import annotations

import ssl

from ..._backends import SyncNetwork, SyncShield
from ..._core.deadline import StepLimits
from ..._core.engine import h1_client
from ..._core.h1 import NEED_DATA, ResponseHead
from ..._core.websocket import WebSocketProtocol, check_accept, new_key, request_fields
from ..._exceptions import RemoteProtocolError, WebSocketHandshakeError
from ..._models import Request
from ..websocket import WebSocket
from .connect import Route, open_stream


def open_websocket(
    network: SyncNetwork,
    route: Route,
    tls: ssl.SSLContext | None,
    request: Request,
    subprotocols: list[str] | None,
    max_message_size: int,
    limits: StepLimits,
    engine: str = "h11",
) -> WebSocket:
    """Connect, send ``request`` as the opening handshake, and return the WebSocket."""
    url = request.url
    stream = open_stream(network, route, url.origin, tls, limits.connect)
    try:
        key = new_key()
        h1 = h1_client(engine)
        fields = request.headers.raw + request_fields(key, subprotocols)
        if route.proxy is not None and route.forwards and url.scheme == "http":
            # Through an HTTP forward proxy: absolute form, with the proxy's fields.
            target = str(url).encode()
            fields += route.proxy.request_fields()
        else:
            target = url.target.encode()
        stream.send_all(h1.start_request(b"GET", target, fields), limits.write)
        stream.send_all(h1.end_request(), limits.write)
        while True:
            event = h1.next_event()
            if event is NEED_DATA:
                data = stream.receive(65536, limits.read)
                if not data:
                    raise RemoteProtocolError("the server closed the connection mid-handshake")
                h1.receive(data)
            elif type(event) is ResponseHead:
                if event.status == 101 or event.status >= 200:
                    head = event
                    break
            else:
                raise WebSocketHandshakeError("the server did not answer the handshake", status=0)
        chosen = check_accept(head.status, head.headers, key, subprotocols)
        protocol = WebSocketProtocol(
            client_side=True, max_message_size=max_message_size, initial=h1.trailing_data
        )
        return WebSocket(stream, protocol, subprotocol=chosen, write_timeout=limits.write)
    except BaseException:
        with SyncShield(1.0):
            stream.close()
        raise
