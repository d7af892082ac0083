"""Typed errors: every failure reaches the caller as one of these, never as a hang."""

from __future__ import annotations


class HTTPError(Exception):
    """Base class of every error hyperpy raises."""


class TransportError(HTTPError):
    """The connection failed: nothing or not all of the exchange happened."""


class TimeoutException(TransportError):
    """A deadline passed before an IO step finished."""


class ConnectTimeout(TimeoutException):
    """Opening the connection (TCP or TLS) took too long."""


class ReadTimeout(TimeoutException):
    """The peer sent nothing for longer than the read timeout."""


class WriteTimeout(TimeoutException):
    """The peer did not accept our bytes within the write timeout."""


class PoolTimeout(TimeoutException):
    """No connection became free within the pool timeout."""


class NetworkError(TransportError):
    """A socket-level failure."""


class ConnectError(NetworkError):
    """The connection could not be opened (refused, unreachable, TLS failure)."""


class ReadError(NetworkError):
    """Receiving failed: the peer reset or closed the connection."""


class WriteError(NetworkError):
    """Sending failed: the peer reset or closed the connection."""


class ProtocolError(TransportError):
    """An HTTP protocol rule was broken."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol (malformed message, early close, bad frame)."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol forbids."""


class RequestNotProcessed(RemoteProtocolError):
    """The server did not process the request, so sending it again cannot apply it twice.

    ``certain`` says whether the protocol proves it: an HTTP/2 GOAWAY whose
    last-stream-id is below the request's stream, or RST_STREAM(REFUSED_STREAM),
    does (RFC 9113 §8.7). A kept-alive HTTP/1.1 connection that the server
    closed before any byte of a response only suggests it: the server most
    likely closed the idle connection as the request went out, but one that
    failed while handling it looks the same. Uncertain cases are retried for
    idempotent methods only. ``error_code`` and ``last_stream_id`` come from
    the HTTP/2 frame that refused the stream, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        certain: bool = True,
        error_code: int | None = None,
        last_stream_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.certain = certain
        self.error_code = error_code
        self.last_stream_id = last_stream_id


class StreamReset(ProtocolError):
    """An HTTP/2 stream was reset (RST_STREAM); ``error_code`` says why.

    ``remote`` is true when the peer reset it, false when we did.
    """

    def __init__(self, message: str, *, error_code: int, remote: bool = True) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.remote = remote


class ConnectionTerminated(ProtocolError):
    """The peer ended the HTTP/2 connection (GOAWAY) while this stream was in flight.

    The stream may have been processed (its id is at most ``last_stream_id``), so it
    is not retried automatically.
    """

    def __init__(self, message: str, *, error_code: int, last_stream_id: int) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.last_stream_id = last_stream_id


class HTTPStatusError(HTTPError):
    """Raised by ``Response.raise_for_status()`` for 4xx and 5xx responses."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class StreamConsumed(HTTPError):
    """A body stream was read a second time."""


class ResponseNotRead(HTTPError):
    """``.content`` was used on a streamed body that was never read."""


class InvalidURL(HTTPError):
    """The URL cannot be requested (bad scheme, missing host, bad port)."""


class ClientClosed(HTTPError):
    """The client was used after ``close()``."""


class TooManyRedirects(HTTPError):
    """A request was redirected more than ``max_redirects`` times.

    ``history`` holds the responses that redirected it, in order.
    """

    def __init__(self, message: str, *, history: list[object] | None = None) -> None:
        super().__init__(message)
        self.history = history or []


class DecodingError(RemoteProtocolError):
    """A response body could not be decoded as its Content-Encoding says."""


class DecompressionBombError(DecodingError):
    """A compressed body expanded beyond the allowed ratio (a zip bomb)."""


class ProxyError(TransportError):
    """The proxy refused or failed the connection (CONNECT not 2xx, SOCKS refusal)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MissingExtra(ImportError):
    """An optional feature was used without its extra installed; the message names it."""


class WebSocketError(HTTPError):
    """A WebSocket failed: the peer broke the protocol or the connection."""


class WebSocketHandshakeError(WebSocketError):
    """The server did not accept the WebSocket (``status`` is what it answered)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class WebSocketClosed(WebSocketError):
    """The WebSocket is closed: ``code`` and ``reason`` say how (1000: normally;
    1006: the connection ended without a close frame)."""

    def __init__(self, message: str, *, code: int, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
