"""The client role: the client, its connection pool, and the HTTP/1.1 and HTTP/2
client connections with their response bodies."""

from .client import AsyncClient

__all__ = ["AsyncClient"]
