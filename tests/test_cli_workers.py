"""``hyperpy serve --workers N`` and ``--reload``: the supervisor and its worker processes,
as real processes sharing one socket; crashes, signals and graceful drains."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from apps.running import Served, alive, wait_until

import hyperpy

TIMEOUT = hyperpy.Timeout(10.0)
APPS = ["tests.apps.slow:app", "tests.apps.slow:sync_app", "tests.apps.flask_app:app"]
pytestmark = pytest.mark.skipif(os.name != "posix", reason="workers need POSIX")


def _pid(url: str) -> int:
    """The pid of the worker answering a request on a new connection."""
    with hyperpy.Client(timeout=TIMEOUT) as client:
        return int(client.get(url + "/pid").text)


def _pids(url: str, want: int, tries: int = 300) -> set[int]:
    """Worker pids seen on new connections, until ``want`` different ones (bounded)."""
    seen: set[int] = set()
    for _ in range(tries):
        seen.add(_pid(url))
        if len(seen) >= want:
            break
    return seen


def _slow_request(url: str, results: list[tuple[int, str]], delay: float = 1.0) -> threading.Thread:
    def run() -> None:
        try:
            with hyperpy.Client(timeout=TIMEOUT) as client:
                response = client.get(f"{url}/slow?delay={delay}")
                results.append((response.status, response.text))
        except hyperpy.HTTPError as exc:
            results.append((0, type(exc).__name__))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_in_flight(server: Served) -> None:
    """Wait until a slow request is in a handler (the test apps say so on stderr)."""
    assert server.stderr.wait_for("slow request started", 15), server.stderr.text


def test_two_workers_answer_from_two_processes() -> None:
    with Served(["tests.apps.slow:app", "--port", "0", "--workers", "2"]) as server:
        assert server.stdout.lines[0].endswith("(2 workers)")
        pids = _pids(server.url, 2)
        assert len(pids) == 2
        assert server.pid not in pids
        assert server.stop() == 0
    assert not any(alive(pid) for pid in pids)
    # Each worker says which interface it serves, and that it is ready.
    assert len(re.findall(r"worker \d+: interface hyperpy", server.stderr.text)) == 2


def test_a_killed_worker_is_replaced_and_service_goes_on() -> None:
    with Served(["tests.apps.slow:app", "--port", "0", "--workers", "2"]) as server:
        pids = _pids(server.url, 2)
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        assert server.stderr.wait_for(rf"worker {victim} was killed by SIGKILL: starting", 10)
        for _ in range(20):
            assert _pid(server.url) != victim
        # The replacement serves too: a pid never seen before shows up.
        assert wait_until(lambda: _pid(server.url) not in pids, 15, step=0)
        assert server.stop() == 0


@pytest.mark.parametrize("app", APPS, ids=["trio", "threads", "flask"])
def test_sigterm_lets_a_request_in_flight_finish(app: str) -> None:
    with Served([app, "--port", "0", "--workers", "2"]) as server:
        pids = _pids(server.url, 2)
        results: list[tuple[int, str]] = []
        request = _slow_request(server.url, results)
        _wait_in_flight(server)
        server.send(signal.SIGTERM)
        request.join(15)
        assert results == [(200, "done")]
        assert server.wait() == 0, server.stderr.text
    assert not any(alive(pid) for pid in pids)
    assert "SIGTERM received: stopping 2 worker(s) gracefully" in server.stderr.text


def test_ctrl_c_reaches_the_supervisor_only() -> None:
    """SIGINT to the whole process group, as a terminal sends it: the workers ignore
    it, the supervisor drains them, the request in flight finishes."""
    args = ["tests.apps.slow:app", "--port", "0", "--workers", "2"]
    with Served(args, new_session=True) as server:
        results: list[tuple[int, str]] = []
        request = _slow_request(server.url, results)
        _wait_in_flight(server)
        os.killpg(server.pid, signal.SIGINT)
        request.join(15)
        assert results == [(200, "done")]
        assert server.wait() == 0, server.stderr.text
    assert "SIGINT received" in server.stderr.text


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["single", "workers"])
@pytest.mark.parametrize("app", APPS, ids=["trio", "threads", "flask"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_second_signal_stops_at_once(app: str, workers: list[str], sig: int) -> None:
    with Served([app, "--port", "0", *workers]) as server:
        results: list[tuple[int, str]] = []
        request = _slow_request(server.url, results, delay=30)
        _wait_in_flight(server)
        started = time.monotonic()
        server.send(sig)
        time.sleep(0.3)
        server.send(sig)
        assert server.wait(15) == 128 + sig
        assert time.monotonic() - started < 10
        request.join(15)
        assert results and results[0][0] != 200


def test_new_connections_are_refused_once_draining() -> None:
    with Served(["tests.apps.slow:app", "--port", "0", "--workers", "1"]) as server:
        results: list[tuple[int, str]] = []
        request = _slow_request(server.url, results)
        _wait_in_flight(server)
        server.send(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(hyperpy.ConnectError), hyperpy.Client(timeout=TIMEOUT) as client:
            client.get(server.url + "/")
        request.join(15)
        assert results == [(200, "done")]
        assert server.wait() == 0


def test_workers_stop_when_the_supervisor_dies() -> None:
    with Served(["tests.apps.slow:app", "--port", "0", "--workers", "2"]) as server:
        pids = _pids(server.url, 2)
        server.process.kill()
        server.wait()
        assert wait_until(lambda: not any(alive(pid) for pid in pids), 15)


def test_sighup_replaces_the_workers() -> None:
    with Served(["tests.apps.slow:app", "--port", "0", "--workers", "2"]) as server:
        old = _pids(server.url, 2)
        server.send(signal.SIGHUP)
        assert server.stderr.wait_for("SIGHUP received: replacing the workers", 10)
        assert wait_until(lambda: not any(alive(pid) for pid in old), 15)
        new = _pids(server.url, 2)
        assert len(new) == 2 and not new & old
        assert server.stop() == 0


def test_a_worker_that_cannot_load_the_app_stops_everything() -> None:
    args = ["tests.apps.nowhere:app", "--port", "0", "--workers", "2"]
    with Served(args) as server:
        assert server.wait(20) == 2
    assert "cannot load or start the app" in server.stderr.text


def test_a_crash_loop_is_given_up(tmp_path: Path) -> None:
    (tmp_path / "crashing.py").write_text("import os\nos._exit(1)\n")
    args = ["crashing:app", "--port", "0", "--workers", "1"]
    started = time.monotonic()
    with Served(args, cwd=tmp_path) as server:
        assert server.wait(60) == 1
    assert time.monotonic() - started < 30
    assert server.stderr.text.count("exited with status 1: starting another") == 5
    assert "restarted 5 times in 10 s already" in server.stderr.text


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_workers_on_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "workers.sock"
    with Served(["tests.apps.slow:app", "--uds", str(path), "--workers", "2"]) as server:
        assert server.url == f"unix:{path}"
        done = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--unix-socket", str(path), "http://x/pid"],
            capture_output=True,
            timeout=20,
            check=True,
        )
        assert int(done.stdout) != server.pid
        assert server.stop() == 0
    assert not path.exists()


def test_workers_write_access_lines_to_stdout() -> None:
    with Served(["tests.apps.slow:app", "--port", "0", "--workers", "2"]) as server:
        for _ in range(4):
            _pid(server.url)
        assert server.stop() == 0
    lines = [line for line in server.stdout.lines[1:] if '"GET /pid HTTP/1.1" 200' in line]
    assert len(lines) == 4


# -- --reload ---------------------------------------------------------------------------

needs_watchfiles = pytest.mark.skipif(
    importlib.util.find_spec("watchfiles") is None, reason="watchfiles is not installed"
)
RELOADABLE = """
from hyperpy import Request, Response

async def app(request: Request) -> Response:
    return Response(200, text="{text}")
"""


@needs_watchfiles
def test_reload_restarts_the_worker_when_a_file_changes(tmp_path: Path) -> None:
    module = tmp_path / "reloadable.py"
    module.write_text(RELOADABLE.format(text="one"))
    with Served(["reloadable:app", "--port", "0", "--reload"], cwd=tmp_path) as server:
        assert "(reloading on changes in" in server.stdout.lines[0]

        def answer() -> str:
            try:
                with hyperpy.Client(timeout=TIMEOUT) as client:
                    return client.get(server.url + "/").text
            except hyperpy.HTTPError:
                return ""

        assert wait_until(lambda: answer() == "one", 10)
        first = server.stderr.wait_for(r"worker (\d+) started", 1)
        assert first is not None
        time.sleep(0.5)  # let the watcher settle before the change
        module.write_text(RELOADABLE.format(text="two"))
        assert wait_until(lambda: answer() == "two", 15), server.stderr.text
        assert "reloadable.py changed: replacing the workers" in server.stderr.text
        assert wait_until(lambda: not alive(int(first.group(1))), 10)
        # A change that does not import leaves it waiting for the next change.
        module.write_text("this is not python\n")
        assert server.stderr.wait_for("waiting for a file change", 15), server.stderr.text
        module.write_text(RELOADABLE.format(text="three"))
        assert wait_until(lambda: answer() == "three", 15), server.stderr.text
        assert server.stop() == 0


def test_reload_without_watchfiles(tmp_path: Path) -> None:
    (tmp_path / "watchfiles.py").write_text("raise ImportError('hidden for the test')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    args = ["tests.apps.slow:app", "--reload"]
    with Served(args, env=env, wait=False) as server:
        assert server.wait() == 2
    assert server.stderr.text.strip() == (
        "error: --reload needs watchfiles: pip install hyperpy[reload]"
    )


def test_reload_and_workers_do_not_mix() -> None:
    with Served(["tests.apps.slow:app", "--reload", "--workers", "2"], wait=False) as server:
        assert server.wait() == 2
    assert "--reload runs a single worker" in server.stderr.text
