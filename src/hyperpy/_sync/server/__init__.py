# GENERATED from src/hyperpy/_async/server/__init__.py by scripts/unasync.py: do not edit.
"""The server role: the accept loop with protocol detection, and the HTTP/1.1 and
HTTP/2 server connections with their request bodies."""

from .server import Server

__all__ = ["Server"]
