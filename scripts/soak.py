"""A soak test: mixed load against one hyperpy server for a while, watching its memory.

The server runs in its own process (``python -m hyperpy serve``, the demo app);
``--clients`` threads each loop over GET /, a 64 KiB echo and a streamed 1 MiB
download, half of them over HTTP/1.1 and half over HTTP/2 (h2c). The server's
RSS is sampled every ``--every`` seconds. The run fails (exit 1) on any request
error, or when the RSS of the last third of the run is still climbing.

    python scripts/soak.py --world trio --seconds 600
    python scripts/soak.py --world threads --seconds 600
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time

import hyperpy

ECHO = os.urandom(64 * 1024)
DOWNLOAD = 1024 * 1024


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def client_loop(
    url: str, http2: bool, stop: threading.Event, counts: dict[str, int], lock: threading.Lock
) -> None:
    with hyperpy.Client(http2_prior_knowledge=http2, timeout=30) as client:
        while not stop.is_set():
            try:
                assert client.get(url + "/").text == "Hello, world!"
                assert client.post(url + "/echo", content=ECHO).content == ECHO
                received = 0
                with client.stream("GET", f"{url}/bytes/{DOWNLOAD}") as response:
                    for chunk in response.iter_bytes():
                        received += len(chunk)
                assert received == DOWNLOAD
                with lock:
                    counts["ok"] += 3
            except (hyperpy.HTTPError, AssertionError) as exc:
                with lock:
                    counts["errors"] += 1
                print(f"error ({'h2' if http2 else 'h1'}): {exc!r}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", choices=["trio", "threads"], default="trio")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--every", type=float, default=10.0, help="RSS sample interval")
    args = parser.parse_args()

    # No access log: this reads only the server's first line from a pipe.
    command = [sys.executable, "-m", "hyperpy", "serve", "--port", "0", "--no-access-log"]
    if args.world == "threads":
        command.append("--sync")
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        match = re.search(r"(http://\S+)", server.stdout.readline())
        if match is None:
            print("the server did not start", file=sys.stderr)
            return 1
        url = match.group(1)
        stop = threading.Event()
        lock = threading.Lock()
        counts = {"ok": 0, "errors": 0}
        clients = [
            threading.Thread(target=client_loop, args=(url, i % 2 == 1, stop, counts, lock))
            for i in range(args.clients)
        ]
        for thread in clients:
            thread.start()
        samples: list[tuple[float, int]] = []
        start = time.monotonic()
        print(f"soak: {args.world} server, {args.clients} clients, {args.seconds:.0f} s")
        print(f"{'seconds':>8}  {'RSS MiB':>8}  {'requests':>9}  errors")
        while (elapsed := time.monotonic() - start) < args.seconds:
            time.sleep(min(args.every, max(0.0, args.seconds - elapsed)))
            samples.append((time.monotonic() - start, rss(server.pid)))
            with lock:
                ok, errors = counts["ok"], counts["errors"]
            print(f"{samples[-1][0]:8.0f}  {samples[-1][1] / 2**20:8.1f}  {ok:9d}  {errors}")
        stop.set()
        for thread in clients:
            thread.join(60)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    third = samples[len(samples) * 2 // 3 :] or samples
    growth = (third[-1][1] - third[0][1]) / 2**20
    peak = max(value for _, value in samples) / 2**20
    print(
        f"requests: {counts['ok']}, errors: {counts['errors']}; RSS peak {peak:.1f} MiB, "
        f"{growth:+.1f} MiB over the last third"
    )
    return 1 if counts["errors"] or growth > 2.0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
