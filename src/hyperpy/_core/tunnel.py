"""The HTTP CONNECT exchange that opens a tunnel through a proxy (RFC 9110 §9.3.6).

Sans-IO: ``connect_request`` gives the bytes to send, ``TunnelResponse.feed``
takes what the proxy answers until its head is complete. The driver then
either speaks TLS through the tunnel or reports the refusal.
"""

from __future__ import annotations

from .._exceptions import ProxyError

# A proxy's answer to CONNECT is a head only; more than this is not one.
MAX_HEAD = 64 * 1024


def connect_request(host: str, port: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The CONNECT request for ``host``:``port`` (authority-form target)."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1".encode("ascii"), b"host: " + authority.encode()]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class TunnelResponse:
    """The proxy's answer to CONNECT, parsed as it arrives."""

    __slots__ = ("_buffer", "headers", "reason", "status")

    def __init__(self) -> None:
        self._buffer = b""
        self.status = 0
        self.reason = ""
        self.headers: list[tuple[bytes, bytes]] = []

    def feed(self, data: bytes) -> bytes | None:
        """Take the proxy's bytes; once the head is complete, return what followed it
        (the tunnel's first bytes, normally none). None: more is needed."""
        if not data:
            raise ProxyError("the proxy closed the connection before answering CONNECT")
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise ProxyError("the proxy's answer to CONNECT is not an HTTP head")
            return None
        head, rest = self._buffer[:end], self._buffer[end + 4 :]
        status_line, *fields = head.split(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProxyError(f"the proxy's answer to CONNECT is malformed: {status_line[:80]!r}")
        self.status = int(parts[1])
        self.reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        for line in fields:
            name, _, value = line.partition(b":")
            self.headers.append((name.strip().lower(), value.strip()))
        return rest

    def check(self, target: str) -> None:
        """Raise ``ProxyError`` unless the proxy opened the tunnel (a 2xx)."""
        if not 200 <= self.status < 300:
            raise ProxyError(
                f"the proxy refused to open a tunnel to {target}: {self.status} {self.reason}",
                status=self.status,
            )
