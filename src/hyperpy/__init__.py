"""hyperpy: a protective and efficient HTTP/1.1 and HTTP/2 client and server.

One engine, two worlds: ``AsyncClient``/``AsyncServer`` for trio, and
``Client``/``Server`` plus ``get``/``post``/... for blocking code.
"""

from ._async.client import AsyncClient
from ._async.server import AsyncServer
from ._async.websocket import AsyncWebSocket
from ._config import H2Settings, ServerLimits, Timeout
from ._core.auth import Auth, BasicAuth, DigestAuth, FunctionAuth
from ._core.cookies import CookieConflict, Cookies
from ._core.proxies import Proxy
from ._core.retry import Retry
from ._exceptions import (
    ClientClosed,
    ConnectError,
    ConnectionTerminated,
    ConnectTimeout,
    DecodingError,
    DecompressionBombError,
    HTTPError,
    HTTPStatusError,
    InvalidURL,
    LocalProtocolError,
    MissingExtra,
    NetworkError,
    PoolTimeout,
    ProtocolError,
    ProxyError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    RequestNotProcessed,
    ResponseNotRead,
    StreamConsumed,
    StreamReset,
    TimeoutException,
    TooManyRedirects,
    TransportError,
    WebSocketClosed,
    WebSocketError,
    WebSocketHandshakeError,
    WriteError,
    WriteTimeout,
)
from ._models import URL, Headers, Request, Response
from ._sync.client import Client
from ._sync.client.api import delete, get, head, options, patch, post, put, request, stream
from ._sync.server import Server
from ._sync.websocket import WebSocket
from ._version import __version__

__all__ = [
    "URL",
    "AsyncClient",
    "AsyncServer",
    "AsyncWebSocket",
    "Auth",
    "BasicAuth",
    "Client",
    "ClientClosed",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionTerminated",
    "CookieConflict",
    "Cookies",
    "DecodingError",
    "DecompressionBombError",
    "DigestAuth",
    "FunctionAuth",
    "H2Settings",
    "HTTPError",
    "HTTPStatusError",
    "Headers",
    "InvalidURL",
    "LocalProtocolError",
    "MissingExtra",
    "NetworkError",
    "PoolTimeout",
    "ProtocolError",
    "Proxy",
    "ProxyError",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "Request",
    "RequestNotProcessed",
    "Response",
    "ResponseNotRead",
    "Retry",
    "Server",
    "ServerLimits",
    "StreamConsumed",
    "StreamReset",
    "Timeout",
    "TimeoutException",
    "TooManyRedirects",
    "TransportError",
    "WebSocket",
    "WebSocketClosed",
    "WebSocketError",
    "WebSocketHandshakeError",
    "WriteError",
    "WriteTimeout",
    "__version__",
    "delete",
    "get",
    "head",
    "options",
    "patch",
    "post",
    "put",
    "request",
    "stream",
]
