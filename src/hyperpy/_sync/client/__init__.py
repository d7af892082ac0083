# GENERATED from src/hyperpy/_async/client/__init__.py by scripts/unasync.py: do not edit.
"""The client role: the client, its connection pool, and the HTTP/1.1 and HTTP/2
client connections with their response bodies."""

from .client import Client

__all__ = ["Client"]
