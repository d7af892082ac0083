"""hyperpy: a protective and efficient HTTP/1.1 and HTTP/2 client and server.

One engine, two worlds: ``AsyncClient``/``AsyncServer`` for trio, and
``Client``/``Server`` plus ``get``/``post``/... for blocking code.
"""

from ._async.client import AsyncClient
from ._async.server import AsyncServer
from ._config import H2Settings, ServerLimits, Timeout
from ._exceptions import (
    ClientClosed,
    ConnectError,
    ConnectionTerminated,
    ConnectTimeout,
    HTTPError,
    HTTPStatusError,
    InvalidURL,
    LocalProtocolError,
    NetworkError,
    PoolTimeout,
    ProtocolError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    RequestNotProcessed,
    ResponseNotRead,
    StreamConsumed,
    StreamReset,
    TimeoutException,
    TransportError,
    WriteError,
    WriteTimeout,
)
from ._models import URL, Headers, Request, Response
from ._sync.client import Client
from ._sync.client.api import delete, get, head, options, patch, post, put, request, stream
from ._sync.server import Server
from ._version import __version__

__all__ = [
    "URL",
    "AsyncClient",
    "AsyncServer",
    "Client",
    "ClientClosed",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionTerminated",
    "H2Settings",
    "HTTPError",
    "HTTPStatusError",
    "Headers",
    "InvalidURL",
    "LocalProtocolError",
    "NetworkError",
    "PoolTimeout",
    "ProtocolError",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "Request",
    "RequestNotProcessed",
    "Response",
    "ResponseNotRead",
    "Server",
    "ServerLimits",
    "StreamConsumed",
    "StreamReset",
    "Timeout",
    "TimeoutException",
    "TransportError",
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
