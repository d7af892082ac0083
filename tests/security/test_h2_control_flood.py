"""A peer that floods PINGs but never reads our replies is cut off, in both worlds.

Our PING acks pile up in the connection's outbox when the peer does not read;
past a bound (a few times ``max_send_buffer``) the server gives up on the
connection instead of growing its memory. Depending on timing, the reader may
instead be the one flushing, blocked on the full socket: it then stops reading
(the kernel buffers bound the memory) and the write timeout ends the connection.
Either way the flooder is cut off in bounded time.
"""

from __future__ import annotations

import socket
import time

import h2.config
import h2.connection
import trio

import hyperpy
from hyperpy._async import demo as async_demo
from hyperpy._sync import demo as sync_demo

SETTINGS = hyperpy.H2Settings(max_send_buffer=16 * 1024)
LIMITS = hyperpy.ServerLimits(write_timeout=1.0)
PING = bytes.fromhex("000008060000000000") + b"12345678"
BATCH = 500
MAX_BATCHES = 400  # 200,000 PINGs at most: bounded whatever the server does


def flood(address: tuple[str, int]) -> tuple[bool, int]:
    """Send PINGs without reading; (was the connection cut off?, PINGs sent)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(address)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sent = 0
    try:
        try:
            sock.sendall(conn.data_to_send())
            for _ in range(MAX_BATCHES):
                sock.sendall(PING * BATCH)
                sent += BATCH
        except TimeoutError:
            pass  # the server stopped reading: it must now end the connection
        except OSError:
            return True, sent  # reset by the server
        # Was the connection ended? Read (and drop) our acks until EOF.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if not sock.recv(65536):
                    return True, sent
            except TimeoutError:
                return False, sent  # alive and silent: not cut off
            except OSError:
                return True, sent
        return False, sent
    finally:
        sock.close()


def still_serves(url: str) -> bool:
    with hyperpy.Client(http2_prior_knowledge=True, timeout=5) as client:
        return client.get(url + "/").text == "Hello, world!"


def test_sync_server_cuts_off_a_ping_flooder() -> None:
    with hyperpy.Server(sync_demo.app, port=0, h2_settings=SETTINGS, limits=LIMITS) as server:
        assert server.address is not None
        start = time.monotonic()
        cut_off, sent = flood(server.address)
        assert cut_off, f"{sent} PINGs unread and still connected"
        assert time.monotonic() - start < 10
        assert still_serves(server.url)


async def test_async_server_cuts_off_a_ping_flooder() -> None:
    async with hyperpy.AsyncServer(
        async_demo.app, port=0, h2_settings=SETTINGS, limits=LIMITS
    ) as server:
        assert server.address is not None
        start = time.monotonic()
        cut_off, sent = await trio.to_thread.run_sync(flood, server.address)
        assert cut_off, f"{sent} PINGs unread and still connected"
        assert time.monotonic() - start < 10
        assert await trio.to_thread.run_sync(still_serves, server.url)
