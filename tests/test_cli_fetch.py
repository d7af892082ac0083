"""``hyperpy get`` and ``hyperpy post``: bodies, heads, files, exit statuses, and the
progress display on a terminal (a pseudo-terminal here)."""

from __future__ import annotations

import gzip
import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyperpy import Request, Response, Server
from hyperpy._cli import main
from hyperpy._cli.progress import Progress, duration, size
from hyperpy._sync import demo

BIG = bytes(range(256)) * 4096  # 1 MiB
DOWNLOAD = 8 * 1024 * 1024


def _app(request: Request) -> Response:
    if request.path == "/inspect":
        body = request.read()
        fields = {name: value for name, value in request.headers.multi_items()}
        info = {"method": request.method, "length": len(body), "headers": fields}
        return Response(200, json=info)
    if request.path == "/redirect":
        return Response(302, headers={"location": "/"})
    if request.path == "/gzip":
        return Response(
            200, content=gzip.compress(b"z" * 100_000), headers={"content-encoding": "gzip"}
        )
    if request.path == "/unsized":

        def chunks() -> Iterator[bytes]:
            for _ in range(16):
                yield b"u" * 65536

        return Response(200, content=chunks())
    return demo.app(request)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with Server(_app, port=0) as server:
        yield server.url


def _run(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "hyperpy", *args],
        input=input,
        capture_output=True,
        timeout=60,
    )


def test_get_prints_the_body(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", base + "/"]) == 0
    assert capsysbinary.readouterr().out == b"Hello, world!"


def test_include_prints_the_head_first(
    base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["get", "-i", base + "/"]) == 0
    out = capsysbinary.readouterr().out
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\ncontent-length: 13" in head.lower()
    assert body == b"Hello, world!"


def test_http2_prior_knowledge(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", "-i", "--http2-prior-knowledge", base + "/"]) == 0
    assert capsysbinary.readouterr().out.startswith(b"HTTP/2 200\r\n")


@pytest.mark.parametrize(("status", "exit_status"), [(200, 0), (302, 0), (404, 1), (503, 1)])
def test_exit_status_follows_the_response_status(
    base: str, status: int, exit_status: int, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["get", f"{base}/status/{status}"]) == exit_status


def test_request_failure_exits_2(closed_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", f"http://127.0.0.1:{closed_port}/"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_headers_are_sent(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", "-H", "X-One: 1", "-H", "user-agent:  probe/2 ", base + "/inspect"]) == 0
    info = json.loads(capsysbinary.readouterr().out)
    assert info["headers"]["x-one"] == "1"
    assert info["headers"]["user-agent"] == "probe/2"


def test_a_malformed_header_is_refused(base: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "-H", "no colon", base + "/"]) == 2
    assert "error: -H wants 'Name: value'" in capsys.readouterr().err


def test_post_data(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["post", "-d", "a=1&b=2", base + "/inspect"]) == 0
    info = json.loads(capsysbinary.readouterr().out)
    assert info["method"] == "POST" and info["length"] == 7
    assert info["headers"]["content-type"] == "application/x-www-form-urlencoded"


def test_post_a_file_streams_it_with_its_length(
    base: str, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(BIG)
    args = ["post", "-d", f"@{upload}", "-H", "content-type: application/octet-stream"]
    assert main([*args, base + "/echo"]) == 0
    assert capsysbinary.readouterr().out == BIG
    assert main(["post", "-d", f"@{upload}", base + "/inspect"]) == 0
    info = json.loads(capsysbinary.readouterr().out)
    assert info["headers"]["content-length"] == str(len(BIG))
    assert info["length"] == len(BIG)


def test_post_from_stdin(base: str) -> None:
    done = _run("post", "-d", "@-", base + "/echo", input=b"from stdin")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"from stdin", b"")


def test_post_without_data(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["post", base + "/inspect"]) == 0
    info = json.loads(capsysbinary.readouterr().out)
    assert (info["method"], info["length"]) == ("POST", 0)


def test_get_with_data_is_refused(base: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "-d", "x", base + "/"]) == 2
    assert "use `hyperpy post`" in capsys.readouterr().err


def test_follow_redirects(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", base + "/redirect"]) == 0
    assert capsysbinary.readouterr().out == b""
    assert main(["get", "-L", base + "/redirect"]) == 0
    assert capsysbinary.readouterr().out == b"Hello, world!"


def test_a_compressed_body_is_decoded(
    base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["get", base + "/gzip"]) == 0
    assert capsysbinary.readouterr().out == b"z" * 100_000


def test_output_file_without_a_terminal_is_quiet(base: str, tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    done = _run("get", "-o", str(target), f"{base}/bytes/{DOWNLOAD}")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert target.read_bytes() == b"x" * DOWNLOAD


def test_output_to_a_directory_fails(base: str, tmp_path: Path) -> None:
    done = _run("get", "-o", str(tmp_path), base + "/")
    assert done.returncode == 2
    assert done.stderr.startswith(b"error: cannot write")


def _on_a_terminal(*args: str) -> tuple[int, str, bytes]:
    """Run ``hyperpy ARGS`` with stderr on a pseudo-terminal: status, what the terminal
    showed, stdout."""
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "hyperpy", *args],
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
        )
        os.close(slave)
        shown = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the other side closed
                    break
                if not data:
                    break
                shown += data
            elif process.poll() is not None:
                break
        out = process.communicate(timeout=30)[0]
    finally:
        os.close(master)
    return process.returncode, shown.decode(), out


def test_progress_on_a_terminal(base: str, tmp_path: Path) -> None:
    target = tmp_path / "download.bin"
    status, shown, out = _on_a_terminal("get", "-o", str(target), f"{base}/bytes/{DOWNLOAD}")
    assert (status, out) == (0, b"")
    assert target.read_bytes() == b"x" * DOWNLOAD
    final = shown.rstrip().rsplit("\r", 1)[-1]
    assert final.startswith(" 100% [########")
    assert "8.0 MiB / 8.0 MiB" in final
    assert "/s" in final and " in 0:0" in final


def test_progress_without_a_known_total(base: str, tmp_path: Path) -> None:
    target = tmp_path / "unsized.bin"
    status, shown, _ = _on_a_terminal("get", "-o", str(target), base + "/unsized")
    assert status == 0
    assert target.stat().st_size == 16 * 65536
    final = shown.rstrip().rsplit("\r", 1)[-1]
    assert final.startswith("1.0 MiB  ") and "%" not in final


def test_silent_hides_the_progress(base: str, tmp_path: Path) -> None:
    target = tmp_path / "quiet.bin"
    status, shown, _ = _on_a_terminal("get", "-s", "-o", str(target), base + "/bytes/100")
    assert (status, shown) == (0, "")


# -- the progress line itself -----------------------------------------------------------


class _Screen:
    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_progress_redraws_at_most_ten_times_a_second() -> None:
    now = [0.0]
    screen = _Screen()
    progress = Progress(screen, 1000, clock=lambda: now[0], width=80)  # type: ignore[arg-type]
    for _ in range(100):
        now[0] += 0.001  # 100 chunks within 0.1 s
        progress.advance(5)
    assert len(screen.writes) == 1
    now[0] += 0.1
    progress.advance(5)
    assert len(screen.writes) == 2


def test_progress_line_with_a_total() -> None:
    now = [0.0]
    screen = _Screen()
    progress = Progress(screen, 4 * 1024 * 1024, clock=lambda: now[0], width=80)  # type: ignore[arg-type]
    now[0] = 2.0
    progress.advance(1024 * 1024)
    line = progress.render(now[0])
    assert line.startswith("  25% [")
    assert "1.0 MiB / 4.0 MiB  512.0 KiB/s  ETA 0:06" in line
    assert len(line) <= 80
    now[0] = 4.0
    progress.advance(3 * 1024 * 1024)
    progress.finish()
    assert screen.writes[-2].startswith("\r 100% [" + "#" * 10)
    assert "in 0:04" in screen.writes[-2]
    assert screen.writes[-1] == "\n"


def test_sizes_and_durations() -> None:
    assert [size(n) for n in (0, 1023, 1024, 1536, 10 * 2**20, 3 * 2**30)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "10.0 MiB",
        "3.0 GiB",
    ]
    assert [duration(s) for s in (0, 59.4, 61, 3600 + 62)] == ["0:00", "0:59", "1:01", "1:01:02"]
