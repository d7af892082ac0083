"""Test tools for code that uses hyperpy: an in-process network with fault injection.

``MemoryNetwork`` (blocking world) and ``AsyncMemoryNetwork`` (trio) carry the
whole HTTP/1.1 and HTTP/2 engine between clients and servers in one process,
with no sockets::

    net = hyperpy.testing.MemoryNetwork()
    with hyperpy.Server(app, network=net) as server, hyperpy.Client(network=net) as client:
        net.cut_after(100)  # the next connection breaks after 100 bytes to the client
        client.get("http://any-host/")  # raises a typed hyperpy.HTTPError

See docs/testing.md.
"""

from ._async.memory import AsyncMemoryListener, AsyncMemoryNetwork, AsyncMemoryStream
from ._sync.memory import MemoryListener, MemoryNetwork, MemoryStream

__all__ = [
    "AsyncMemoryListener",
    "AsyncMemoryNetwork",
    "AsyncMemoryStream",
    "MemoryListener",
    "MemoryNetwork",
    "MemoryStream",
]
