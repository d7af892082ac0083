"""Python web apps on hyperpy next to the servers they usually run on, under wrk.

A Flask hello-world (WSGI) on hyperpy's threaded ``Server``, waitress and gunicorn
(one sync worker), and a Starlette hello-world (ASGI) on hyperpy's trio
``AsyncServer``, hypercorn (trio worker) and uvicorn (h11, asyncio). Each server
runs alone, in a subprocess, with its own defaults (access logs off); wrk runs
``-t1 -c50 --latency`` against it for ``--seconds``. One table, one run: compare
rows, not runs.

    pip install -e ".[bench]" flask starlette waitress gunicorn uvicorn
    python scripts/bench_apps.py --seconds 10

Servers whose package is missing are skipped; wrk must be installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
BODY = b"Hello, world!"


# -- the apps (imported by every server subprocess) -----------------------------------


def _flask_app() -> object:
    from flask import Flask

    app = Flask("hello")

    @app.route("/")
    def hello() -> bytes:
        return BODY

    return app


def _starlette_app() -> object:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse(BODY)

    return Starlette(routes=[Route("/", hello)])


if __name__ != "__main__" and os.environ.get("HYPERPY_BENCH_APP") == "flask":
    flask_app = _flask_app()  # what gunicorn imports


# -- the servers ----------------------------------------------------------------------


def serve(name: str, port: int) -> None:
    """Run server ``name`` on ``port`` in this process until SIGTERM."""
    if name == "hyperpy-wsgi":
        from hyperpy import Server
        from hyperpy.wsgi import WSGIAdapter

        Server(WSGIAdapter(_flask_app()), port=port).serve_forever()  # type: ignore[arg-type]
    elif name == "waitress":
        import waitress

        waitress.serve(_flask_app(), host="127.0.0.1", port=port, _quiet=True)
    elif name == "hyperpy-asgi":
        import trio

        from hyperpy import AsyncServer
        from hyperpy.asgi import ASGIAdapter

        server = AsyncServer(ASGIAdapter(_starlette_app()), port=port)  # type: ignore[arg-type]
        trio.run(server.serve_forever)
    elif name == "hypercorn":
        import trio
        from hypercorn.config import Config
        from hypercorn.trio import serve as hypercorn_serve

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.accesslog = None
        config.loglevel = "WARNING"
        config.keep_alive_max_requests = 10**9  # hyperpy has no such cap
        trio.run(hypercorn_serve, _starlette_app(), config)
    elif name == "uvicorn":
        import uvicorn

        uvicorn.run(
            _starlette_app(),  # type: ignore[arg-type]
            host="127.0.0.1",
            port=port,
            http="h11",
            loop="asyncio",
            access_log=False,
            log_level="warning",
        )
    else:
        raise SystemExit(f"unknown server {name!r}")


@dataclass
class Spec:
    name: str
    app: str
    module: str  # what must be importable
    command: list[str]


def specs(port: int) -> list[Spec]:
    py = sys.executable
    me = os.path.abspath(__file__)

    def ours(name: str) -> list[str]:
        return [py, me, "_serve", name, str(port)]

    gunicorn = [
        py, "-m", "gunicorn", "--chdir", HERE, "-w", "1", "-k", "sync",
        "-b", f"127.0.0.1:{port}", "--log-level", "warning", "bench_apps:flask_app",
    ]  # fmt: skip
    return [
        Spec("hyperpy Server (threads)", "Flask", "flask", ours("hyperpy-wsgi")),
        Spec("waitress", "Flask", "waitress", ours("waitress")),
        Spec("gunicorn (1 sync worker)", "Flask", "gunicorn", gunicorn),
        Spec("hyperpy AsyncServer (trio)", "Starlette", "starlette", ours("hyperpy-asgi")),
        Spec("hypercorn (trio worker)", "Starlette", "hypercorn", ours("hypercorn")),
        Spec("uvicorn (h11)", "Starlette", "uvicorn", ours("uvicorn")),
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], limit: float = 15.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start listening in time")


def _wrk(port: int, seconds: float) -> dict[str, str]:
    out = subprocess.run(
        ["wrk", "-t1", "-c50", "--latency", f"-d{int(seconds)}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    result = {"rps": "?", "p50": "?", "p99": "?", "errors": "0"}
    if match := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result["rps"] = f"{float(match.group(1)):,.0f}"
    if match := re.search(r"^\s+50%\s+(\S+)", out, re.M):
        result["p50"] = match.group(1)
    if match := re.search(r"^\s+99%\s+(\S+)", out, re.M):
        result["p99"] = match.group(1)
    if match := re.search(r"Socket errors: (.*)", out):
        result["errors"] = match.group(1)
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        result["errors"] += f"; non-2xx {match.group(1)}"
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk duration per row")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    print(f"wrk -t1 -c50 --latency -d{int(args.seconds)}s, GET / answering {BODY!r}")
    print(f"{'server':28} {'app':10} {'req/s':>8} {'p50':>9} {'p99':>9}  errors")
    for index in range(len(specs(0))):
        port = _free_port()  # a fresh one per server: no TIME_WAIT from the last
        spec = specs(port)[index]
        try:
            __import__(spec.module)
        except ImportError:
            print(f"{spec.name:28} {spec.app:10} skipped: {spec.module} is not installed")
            continue
        env = dict(os.environ, HYPERPY_BENCH_APP="flask")
        # The servers' own chatter (waitress logs its queue depth) would drown the table.
        process = subprocess.Popen(
            spec.command,
            env=env,
            cwd=HERE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_listening(port, process)
            result = _wrk(port, args.seconds)
            print(
                f"{spec.name:28} {spec.app:10} {result['rps']:>8} {result['p50']:>9}"
                f" {result['p99']:>9}  {result['errors']}"
            )
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "_serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(main())
