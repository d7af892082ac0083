"""Compare the HTTP/1.1 engines: h11 (``hyperpy._core.h1_h11``) and zttp (``h1_zttp``).

One exchange is one keep-alive request/response on a connection that lives
across exchanges: the client builds the request, the server parses it and
builds the response, the client parses the response, and both sides reset for
the next one. No sockets: this measures the protocol layer alone.

    python scripts/bench_engines.py [--seconds 1.0] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from types import ModuleType

from hyperpy import ServerLimits
from hyperpy._core import h1_h11, h1_zttp

ENGINES: dict[str, ModuleType] = {"h11": h1_h11, "zttp": h1_zttp}

REQUEST_FIELDS = [
    (b"host", b"example.org"),
    (b"user-agent", b"hyperpy/bench"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"),
]
RESPONSE_FIELDS = [(b"content-type", b"application/json")]
RESPONSE_BODY = b'{"ok": true, "items": [1, 2, 3]}'
POST_BODY = b"x" * 1024


def exchange(engine: ModuleType, method: bytes, body: bytes) -> Callable[[], None]:
    """A function that runs one exchange on a kept-alive client/server pair."""
    client = engine.H1Client()
    server = engine.H1Server(ServerLimits())
    fields = (
        [*REQUEST_FIELDS, (b"content-length", str(len(body)).encode())] if body else REQUEST_FIELDS
    )
    need_data = engine.NEED_DATA
    end_of_message = engine.EndOfMessage

    def run() -> None:
        for buffer in client.whole_request(method, b"/api/items?page=2", fields, body):
            server.receive(buffer)
        event = server.next_event()  # the request head
        while type(event := server.next_event()) is not end_of_message:
            assert event is not need_data
        for buffer in server.whole_response(200, RESPONSE_FIELDS, RESPONSE_BODY, b"OK"):
            client.receive(buffer)
        while type(event := client.next_event()) is not end_of_message:
            assert event is not need_data
        if not (server.try_reuse() and client.try_reuse()):
            raise RuntimeError("the connection was not kept alive")

    run()  # warm up, and check the exchange works end to end
    return run


def rate(run: Callable[[], None], seconds: float, rounds: int) -> float:
    """Exchanges per second: the best of ``rounds`` timed runs of about ``seconds``."""
    count = 1
    while True:  # size a batch to take about a tenth of a round
        started = time.perf_counter()
        for _ in range(count):
            run()
        if time.perf_counter() - started > seconds / 10:
            break
        count *= 2
    best = 0.0
    for _ in range(rounds):
        done = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            for _ in range(count):
                run()
            done += count
        best = max(best, done / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best counts")
    args = parser.parse_args()
    for label, method, body in (
        ("GET, 32-byte response", b"GET", b""),
        ("POST 1 KiB", b"POST", POST_BODY),
    ):
        rates = {
            name: rate(exchange(engine, method, body), args.seconds, args.rounds)
            for name, engine in ENGINES.items()
        }
        print(label)
        for name, value in rates.items():
            print(f"  {name:5} {value:>10,.0f} exchanges/s  {1e6 / value:6.2f} µs each")
        print(f"  zttp / h11: {rates['zttp'] / rates['h11']:.2f}x")


if __name__ == "__main__":
    main()
