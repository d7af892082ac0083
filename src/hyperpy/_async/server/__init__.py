"""The server role: the accept loop with protocol detection, and the HTTP/1.1 and
HTTP/2 server connections with their request bodies."""

from .server import AsyncServer

__all__ = ["AsyncServer"]
