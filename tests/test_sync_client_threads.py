"""One blocking client shared by many threads (not generated: it is about threads).

16 threads send 200 requests each through one ``Client``: over HTTP/1.1 (a
bounded pool of connections) and over one shared HTTP/2 connection. Every
body must come back intact and answer its own request, and the client must
open no more connections than its limits allow.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator

import pytest

from hyperpy import Client, Request, Response, Server

THREADS = 16
REQUESTS = 200


def app(request: Request) -> Response:
    body = request.read()
    # Echo the request's own identity and a digest of its body.
    return Response(
        200,
        content=request.query.encode() + b"|" + hashlib.sha256(body).hexdigest().encode(),
    )


@pytest.fixture
def server() -> Iterator[Server]:
    with Server(app, port=0) as server:
        yield server


@pytest.mark.parametrize("protocol", ["http/1.1", "h2c"])
def test_threads_share_one_client(server: Server, protocol: str) -> None:
    h2 = protocol == "h2c"
    failures: list[str] = []
    with Client(timeout=20, http2_prior_knowledge=h2, max_connections=8) as client:

        def worker(index: int) -> None:
            for number in range(REQUESTS):
                query = f"t={index}&n={number}"
                body = f"{index}:{number}:".encode() * (1 + number % 50)
                try:
                    response = client.post(f"{server.url}/?{query}", content=body)
                    expected = query.encode() + b"|" + hashlib.sha256(body).hexdigest().encode()
                    if response.status != 200 or response.content != expected:
                        failures.append(f"{query}: {response.status} {response.content[:60]!r}")
                except Exception as exc:  # recorded: none is expected
                    failures.append(f"{query}: {exc!r}")

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
        assert failures == []
        if h2:
            assert client.connections_opened == 1
        else:
            assert client.connections_opened <= 8
