"""Run the Autobahn TestSuite's WebSocket cases against hyperpy and write
docs/websocket-conformance.md.

kosoku (PyPI) drives the Autobahn case files (1.x to 13.x, 517 cases): as a
fuzzing client against hyperpy's echo servers (role "server"), and as a fuzzing
server for hyperpy's echo clients (role "client"), each in both worlds (trio's
``AsyncServer``/``AsyncClient`` and the blocking ``Server``/``Client``).

    python scripts/autobahn.py                      # every case, both engines: the page
    python scripts/autobahn.py --engine h11 --case '6.*' --out -   # a selection, printed

tests/interop/test_autobahn.py runs the same harness and fails on any FAILED case.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import platform
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import kosoku
import trio

import hyperpy
from hyperpy import AsyncClient, AsyncServer, Client, Request, Response, Server
from hyperpy._core.engine import ENGINES, choose

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "websocket-conformance.md"

WORLDS = ("async", "sync")
ROLES = ("server", "client")
OUTCOMES = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")

# The 9.x cases echo messages of up to 16 MiB; the default limit is 1 MiB.
MAX_MESSAGE_SIZE = 32 * 1024 * 1024
# Cases run side by side (kosoku's client runs them so, and so do our echo
# clients): several cases wait a second on purpose (5.19, 5.20, 6.4.x).
CONCURRENCY = 4
# Bounds: one case's exchange, and a whole run of one role and world.
CASE_TIMEOUT = 30.0
RUN_TIMEOUT = 300.0

CATEGORIES = {
    "1": "Framing",
    "2": "Pings/pongs",
    "3": "Reserved bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 handling",
    "7": "Close handling",
    "9": "Limits/performance",
    "10": "Auto-fragmentation",
    "12": "Compression (payloads)",
    "13": "Compression (parameters)",
}

# Why a case is not OK although hyperpy is right, when that is by design.
NOTES = {
    "7.1.6": "Informational by definition (what an endpoint does with a message "
    "that races a close is left open). hyperpy echoes the 256 KiB message and the "
    "next one before the close echo; the case's expected list holds only the "
    "second, hence Autobahn's 'differ'.",
    "7.13.1": "Informational by definition: close code 5000 is outside every "
    "range RFC 6455 defines; hyperpy fails the connection as a protocol error.",
    "7.13.2": "Informational by definition: close code 65535 is outside every "
    "range RFC 6455 defines; hyperpy fails the connection as a protocol error.",
    "12": "permessage-deflate (RFC 7692) is not implemented: as a client hyperpy "
    "does not offer it, as a server it does not accept the fuzzer's offer (its 101 "
    "has no Sec-WebSocket-Extensions). Each case then closes at once, and Autobahn "
    "reports it UNIMPLEMENTED.",
    "13": "As 12.x: the compression parameters cannot apply without permessage-deflate.",
}


@dataclass(frozen=True)
class CaseOutcome:
    """One case's verdict, reduced to what the page and the tests need."""

    case_id: str
    outcome: str
    behavior: str
    behavior_close: str
    result: str
    remote_close_code: int | None
    duration_ms: int
    description: str


@dataclass
class Run:
    """The cases of one role, world and engine."""

    role: str
    world: str
    engine: str
    seconds: float
    cases: list[CaseOutcome]

    def counts(self, category: str | None = None) -> Counter[str]:
        return Counter(
            case.outcome
            for case in self.cases
            if category is None or category_of(case.case_id) == category
        )


def category_of(case_id: str) -> str:
    return case_id.split(".", 1)[0]


def outcome_of(behavior: str, behavior_close: str) -> str:
    """One word per case: the message verdict, unless the close went wrong."""
    if behavior in ("FAILED", "ERROR") or behavior_close not in ("OK", "INFORMATIONAL"):
        return "FAILED"
    return behavior


def _reduce(results: Sequence[Any]) -> list[CaseOutcome]:
    outcomes = [
        CaseOutcome(
            case_id=r.case_id,
            outcome=outcome_of(r.behavior.value, r.behavior_close.value),
            behavior=r.behavior.value,
            behavior_close=r.behavior_close.value,
            result=f"{r.result} {r.result_close}",
            remote_close_code=r.remote_close_code,
            duration_ms=r.duration,
            description=" ".join(r.description.split()),
        )
        for r in results
    ]
    return sorted(outcomes, key=lambda c: [int(p) for p in c.case_id.split(".")])


# -- the endpoints under test: echo every message back exactly ------------------


async def async_echo_app(request: Request) -> Response:
    """``AsyncServer`` handler: echo text as text and binary as binary."""
    if request.upgrade is None:
        return Response(426)
    ws = await request.upgrade.accept_websocket(max_message_size=MAX_MESSAGE_SIZE)
    try:
        async for message in ws:
            await ws.send(message)
    except (hyperpy.WebSocketClosed, hyperpy.TransportError):
        pass  # the fuzzer failed the connection, or we did: nothing left to echo
    return Response(200)


def sync_echo_app(request: Request) -> Response:
    """``Server`` handler: echo text as text and binary as binary."""
    if request.upgrade is None:
        return Response(426)
    ws = request.upgrade.accept_websocket(max_message_size=MAX_MESSAGE_SIZE)
    try:
        for message in ws:
            ws.send(message)
    except (hyperpy.WebSocketClosed, hyperpy.TransportError):
        pass
    return Response(200)


async def async_text_as_binary_app(request: Request) -> Response:
    """A deliberately wrong echo (text answered as binary): the runner's control."""
    assert request.upgrade is not None
    ws = await request.upgrade.accept_websocket()
    async for message in ws:
        await ws.send(message.encode() if isinstance(message, str) else message)
    return Response(200)


def sync_text_as_binary_app(request: Request) -> Response:
    """The blocking twin of ``async_text_as_binary_app``."""
    assert request.upgrade is not None
    ws = request.upgrade.accept_websocket()
    for message in ws:
        ws.send(message.encode() if isinstance(message, str) else message)
    return Response(200)


def _case_url(base: str, case: int, agent: str) -> str:
    return f"{base}/runCase?case={case}&agent={agent}"


async def async_echo_client(base: str, agent: str, engine: str) -> int:
    """The Autobahn client protocol with ``AsyncClient``: ask the case count, run
    each case by echoing until the fuzzer closes (``CONCURRENCY`` cases at a time),
    then end the run. Returns the number of cases run."""
    async with AsyncClient(engine=engine) as client:
        async with client.websocket(f"{base}/getCaseCount") as ws:
            count = int(await ws.receive(timeout=CASE_TIMEOUT))
        cases = iter(range(1, count + 1))

        async def worker() -> None:
            for case in cases:  # shared: each case goes to one worker
                try:
                    with trio.fail_after(CASE_TIMEOUT):
                        async with client.websocket(
                            _case_url(base, case, agent), max_message_size=MAX_MESSAGE_SIZE
                        ) as ws:
                            while True:
                                await ws.send(await ws.receive())
                except (hyperpy.WebSocketClosed, hyperpy.TransportError):
                    pass  # the case is over: the fuzzer closed, or failed the connection

        async with trio.open_nursery() as nursery:
            for _ in range(CONCURRENCY):
                nursery.start_soon(worker)
        async with client.websocket(f"{base}/updateReports?agent={agent}") as ws:
            try:
                await ws.receive(timeout=CASE_TIMEOUT)
            except hyperpy.WebSocketClosed:
                pass
    return count


def sync_echo_client(base: str, agent: str, engine: str) -> int:
    """``async_echo_client`` with the blocking ``Client``, a thread per worker."""
    with Client(engine=engine) as client:
        with client.websocket(f"{base}/getCaseCount") as ws:
            count = int(ws.receive(timeout=CASE_TIMEOUT))

        def run_case(case: int) -> None:
            try:
                with client.websocket(
                    _case_url(base, case, agent), max_message_size=MAX_MESSAGE_SIZE
                ) as ws:
                    while True:
                        ws.send(ws.receive(timeout=CASE_TIMEOUT))
            except (hyperpy.WebSocketClosed, hyperpy.TransportError):
                pass

        with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="echo-client") as pool:
            list(pool.map(run_case, range(1, count + 1)))  # re-raises a worker's error
        with client.websocket(f"{base}/updateReports?agent={agent}") as ws:
            try:
                ws.receive(timeout=CASE_TIMEOUT)
            except hyperpy.WebSocketClosed:
                pass
    return count


# -- kosoku, which runs on asyncio, in a thread of its own ---------------------


def fuzzing_client(
    url: str, cases: Sequence[str] | None, exclude: Sequence[str] | None
) -> list[CaseOutcome]:
    """Run kosoku's fuzzing client against the server at ``url`` (blocking)."""

    async def main() -> list[Any]:
        try:
            return await asyncio.wait_for(
                kosoku.run_fuzzingclient(url, cases, exclude, concurrency=CONCURRENCY),
                RUN_TIMEOUT,
            )
        except kosoku.FailureError as failure:
            return failure.results  # every case's result, passed or not

    return _reduce(asyncio.run(main()))


class FuzzingServer:
    """kosoku's fuzzing server on an asyncio loop in a thread: ``start`` gives
    the ``ws://`` base URL, ``results`` waits for the run to end."""

    def __init__(self, cases: Sequence[str] | None, exclude: Sequence[str] | None) -> None:
        self._cases = list(cases) if cases else None
        self._exclude = list(exclude) if exclude else None
        self._ready = threading.Event()
        self._base = ""
        self._results: list[Any] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kosoku", daemon=True)

    def start(self) -> str:
        self._thread.start()
        if not self._ready.wait(30) or not self._base:
            raise RuntimeError(f"kosoku's fuzzing server did not start: {self._error!r}")
        return self._base

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to the caller by results()
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        server = kosoku.run_fuzzingserver(self._cases, self._exclude, host="127.0.0.1", port=0)
        async with server:
            self._base = f"ws://{server.address}:{server.port}"
            self._ready.set()
            try:
                self._results = await asyncio.wait_for(server.get_result(), RUN_TIMEOUT)
            except kosoku.FailureError as failure:
                self._results = failure.results

    def results(self) -> list[CaseOutcome]:
        self._thread.join(RUN_TIMEOUT + 10)
        if self._thread.is_alive():
            raise RuntimeError("kosoku's fuzzing server did not finish")
        if self._error is not None:
            raise RuntimeError(f"kosoku's fuzzing server failed: {self._error!r}")
        return _reduce(self._results)


def _agent(world: str, engine: str) -> str:
    return f"hyperpy-{world}-{engine}"


# -- one run per role and world -------------------------------------------------


async def async_server_role(
    engine: str,
    cases: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    app: Callable[[Request], Awaitable[Response]] = async_echo_app,
) -> Run:
    """kosoku's client against ``AsyncServer`` (call under trio)."""
    start = time.monotonic()
    async with AsyncServer(app, port=0, engine=engine) as server:
        url = server.url.replace("http", "ws", 1)
        outcomes = await trio.to_thread.run_sync(fuzzing_client, url, cases, exclude)
    return Run("server", "async", engine, time.monotonic() - start, outcomes)


def sync_server_role(
    engine: str,
    cases: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    app: Callable[[Request], Response] = sync_echo_app,
) -> Run:
    """kosoku's client against the blocking ``Server``."""
    start = time.monotonic()
    with Server(app, port=0, engine=engine) as server:
        outcomes = fuzzing_client(server.url.replace("http", "ws", 1), cases, exclude)
    return Run("server", "sync", engine, time.monotonic() - start, outcomes)


async def async_client_role(
    engine: str, cases: Sequence[str] | None = None, exclude: Sequence[str] | None = None
) -> Run:
    """``AsyncClient`` against kosoku's server (call under trio)."""
    start = time.monotonic()
    fuzzer = FuzzingServer(cases, exclude)
    base = await trio.to_thread.run_sync(fuzzer.start)
    count = await async_echo_client(base, _agent("async", engine), engine)
    outcomes = await trio.to_thread.run_sync(fuzzer.results)
    _check_count(count, outcomes)
    return Run("client", "async", engine, time.monotonic() - start, outcomes)


def sync_client_role(
    engine: str, cases: Sequence[str] | None = None, exclude: Sequence[str] | None = None
) -> Run:
    """The blocking ``Client`` against kosoku's server."""
    start = time.monotonic()
    fuzzer = FuzzingServer(cases, exclude)
    count = sync_echo_client(fuzzer.start(), _agent("sync", engine), engine)
    outcomes = fuzzer.results()
    _check_count(count, outcomes)
    return Run("client", "sync", engine, time.monotonic() - start, outcomes)


def _check_count(count: int, outcomes: list[CaseOutcome]) -> None:
    if count != len(outcomes):
        raise RuntimeError(f"the fuzzer announced {count} cases but reported {len(outcomes)}")


def run(
    role: str,
    world: str,
    engine: str,
    cases: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    wrong_echo: bool = False,
) -> Run:
    """One role and world, blocking (the async world gets a trio loop of its own).
    ``wrong_echo``: serve the control echo that answers text with binary."""
    if world == "sync":
        if role == "server":
            app = sync_text_as_binary_app if wrong_echo else sync_echo_app
            return sync_server_role(engine, cases, exclude, app)
        return sync_client_role(engine, cases, exclude)
    if role == "server":
        async_app = async_text_as_binary_app if wrong_echo else async_echo_app
        return trio.run(async_server_role, engine, cases, exclude, async_app)
    return trio.run(async_client_role, engine, cases, exclude)


# -- the page ----------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _counts_cells(counts: Counter[str]) -> list[object]:
    return [counts.get(o, 0) or "" for o in OUTCOMES]


def _category_table(runs: list[Run]) -> list[str]:
    first = runs[0]
    categories = sorted({category_of(c.case_id) for c in first.cases}, key=int)
    lines = [
        _row(["Cases", "Group", "Count", *OUTCOMES]),
        _row(["---", "---", "---:", *["---:"] * len(OUTCOMES)]),
    ]
    for category in categories:
        counts = first.counts(category)
        lines.append(
            _row(
                [
                    f"{category}.x",
                    CATEGORIES.get(category, ""),
                    sum(counts.values()),
                    *_counts_cells(counts),
                ]
            )
        )
    total = first.counts()
    lines.append(_row(["**All**", "", f"**{sum(total.values())}**", *_counts_cells(total)]))
    return lines


def _not_ok(runs: list[Run]) -> list[str]:
    """A line per case that is not OK somewhere (12.x and 13.x as one line each)."""
    seen: dict[str, dict[str, list[str]]] = {}
    descriptions: dict[str, str] = {}
    codes: dict[str, set[int | None]] = {}
    for r in runs:
        for case in r.cases:
            if case.outcome == "OK":
                continue
            key = case.case_id
            if case.outcome == "UNIMPLEMENTED" and category_of(key) in ("12", "13"):
                key = category_of(key)
            where = f"{r.role} {r.world} {r.engine}"
            seen.setdefault(key, {}).setdefault(case.outcome, []).append(where)
            descriptions.setdefault(key, case.description)
            codes.setdefault(key, set()).add(case.remote_close_code)
    lines = []
    everywhere = {f"{r.role} {r.world} {r.engine}" for r in runs}
    for key in sorted(seen, key=lambda k: [int(p) for p in k.split(".")]):
        for outcome, places in seen[key].items():
            label = f"{key}.x (all)" if key in ("12", "13") else key
            scope = "every run" if set(places) == everywhere else ", ".join(sorted(set(places)))
            note = NOTES.get(key) or descriptions[key]
            sent = " or ".join(
                "no code" if c is None else str(c) for c in sorted(codes[key], key=str)
            )
            lines.append(f"- **{label}**: {outcome} in {scope}. {note} hyperpy closed with {sent}.")
    return lines


def render(runs: list[Run], date: str) -> str:
    engines = sorted({r.engine for r in runs})
    total = len(runs[0].cases) if runs else 0
    out = [
        "# WebSocket conformance",
        "",
        "<!-- Generated by scripts/autobahn.py from a real run: do not edit by hand. -->",
        "",
        "hyperpy's WebSocket (RFC 6455) is checked against the",
        "[Autobahn TestSuite](https://github.com/crossbario/autobahn-testsuite) cases, the",
        "suite WebSocket implementations are usually measured with. The case files are",
        f"run by [kosoku](https://pypi.org/project/kosoku/) {_version('kosoku')}, which drives",
        "Autobahn's own case files from a runner of its own: as a fuzzing client against",
        "an echo server written with `AsyncServer` and `Server` (hyperpy is the server),",
        "and as a fuzzing server for an echo client written with `AsyncClient` and",
        "`Client` (hyperpy is the client). The echo sends every message back as it came:",
        "text as text, binary as binary.",
        "",
        "kosoku carries Autobahn's case files with only mechanical Python 3 fixes, and",
        "the same case list (517 cases) as Autobahn; it replaces Autobahn's Python 2",
        "and Twisted runner. A control in the tests (an echo that answers text with",
        "binary) checks that it does report FAILED.",
        "",
        f"- Run: {date}, {total} cases per role, world and HTTP/1.1 engine "
        f"({', '.join(engines)}; the engine parses the opening handshake).",
        f"- hyperpy {_version('hyperpy')}, wsproto {_version('wsproto')}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}.",
        "- Regenerate with `python scripts/autobahn.py`; `tests/interop/test_autobahn.py`",
        "  runs the same cases in CI and fails on any FAILED case.",
        "",
        "Outcomes, as Autobahn names them: **OK**, the case's expected behaviour;",
        "**NON-STRICT**, acceptable but off a SHOULD of the RFC; **INFORMATIONAL**, the",
        "RFC leaves the behaviour open; **UNIMPLEMENTED**, an optional feature the case",
        "needs is not offered; **FAILED**, a MUST broken (or a bad closing handshake).",
        "",
        "## Summary",
        "",
        _row(["hyperpy is", "World", "Engine", "Cases", *OUTCOMES, "Time"]),
        _row(["---", "---", "---", "---:", *["---:"] * len(OUTCOMES), "---:"]),
    ]
    for r in runs:
        counts = r.counts()
        out.append(
            _row(
                [
                    r.role,
                    r.world,
                    r.engine,
                    len(r.cases),
                    *[counts.get(o, 0) for o in OUTCOMES],
                    f"{r.seconds:.1f} s",
                ]
            )
        )
    titles = {
        ("server", "async"): "hyperpy as the server, async world (`AsyncServer`)",
        ("server", "sync"): "hyperpy as the server, sync world (`Server`)",
        ("client", "async"): "hyperpy as the client, async world (`AsyncClient`)",
        ("client", "sync"): "hyperpy as the client, sync world (`Client`)",
    }
    for role in ROLES:
        for world in WORLDS:
            group = [r for r in runs if r.role == role and r.world == world]
            if not group:
                continue
            out += ["", f"## {titles[role, world]}", ""]
            same = all(
                [(c.case_id, c.outcome) for c in r.cases]
                == [(c.case_id, c.outcome) for c in group[0].cases]
                for r in group
            )
            if same:
                names = " and ".join(r.engine for r in group)
                label = "Engines" if len(group) > 1 else "Engine"
                out += [f"{label} {names}: the same outcome for every case.", ""]
                out += _category_table(group)
            else:
                for r in group:
                    out += [f"Engine {r.engine}:", "", *_category_table([r]), ""]
    out += ["", "## Cases that are not OK", ""]
    out += _not_ok(runs) or ["None."]
    out += [
        "",
        "Every case of Autobahn's list runs, the 9.x ones too (messages of up to 16 MiB,",
        "runs of 1000 round trips): the echo endpoints raise `max_message_size` to",
        f"{MAX_MESSAGE_SIZE // 2**20} MiB for them (the default is 1 MiB). Autobahn's 9.9.1",
        "(one endless message) is commented out of its own case list, and kosoku has",
        "the same list.",
        "",
    ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engine",
        action="append",
        choices=sorted(ENGINES),
        help="HTTP/1.1 engine (repeatable; default: every installed one)",
    )
    parser.add_argument("--world", action="append", choices=WORLDS, help="default: both")
    parser.add_argument("--role", action="append", choices=ROLES, help="default: both")
    parser.add_argument("--case", action="append", help="case id or glob, e.g. '6.*'")
    parser.add_argument("--exclude", action="append", help="case id or glob to leave out")
    parser.add_argument("--out", default=str(PAGE), help="the page, or '-' for stdout")
    parser.add_argument("--json", help="also write every case's outcome to this file")
    parser.add_argument(
        "--wrong-echo",
        action="store_true",
        help="serve an echo that answers text with binary (the runner's control)",
    )
    args = parser.parse_args(argv)

    engines = args.engine or [e for e in sorted(ENGINES) if _installed(e)]
    runs = []
    for engine in engines:
        for role in args.role or ROLES:
            for world in args.world or WORLDS:
                r = run(role, world, engine, args.case, args.exclude, args.wrong_echo)
                counts = r.counts()
                print(
                    f"{role:6} {world:5} {engine:4} {len(r.cases)} cases in {r.seconds:.1f} s: "
                    + ", ".join(f"{o} {counts[o]}" for o in OUTCOMES if counts[o]),
                    file=sys.stderr,
                )
                runs.append(r)
    page = render(runs, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    if args.out == "-":
        print(page)
    else:
        Path(args.out).write_text(page)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(
            json.dumps([{**asdict(r), "cases": [asdict(c) for c in r.cases]} for r in runs])
        )
    failed = sum(r.counts()["FAILED"] for r in runs)
    return 1 if failed and not args.wrong_echo else 0


def _installed(engine: str) -> bool:
    try:
        choose(engine)
    except Exception:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
