"""The Autobahn TestSuite's WebSocket cases (all 517, 1.x to 13.x), driven by kosoku,
against hyperpy in both roles and both worlds: kosoku's fuzzing client against an
echo ``AsyncServer``/``Server``, and an echo ``AsyncClient``/``Client`` against
kosoku's fuzzing server. The harness is scripts/autobahn.py, which also writes
docs/websocket-conformance.md.

No case may FAIL. What else is allowed, and why:

- INFORMATIONAL only for 7.1.6 and 7.13.x, which Autobahn marks informational
  whatever the peer does (a message racing a close; close codes 5000 and 65535).
- UNIMPLEMENTED only for 12.x and 13.x: permessage-deflate, which hyperpy does not
  offer or accept.
- NON-STRICT would be allowed (a SHOULD missed), but none is expected: 3.2-3.4,
  4.1.3-4.2.5 and 5.15 were NON-STRICT until hyperpy delivered (and let the
  handler answer) a message that arrived just before a broken frame, and they
  must stay OK.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio
from peers import interop

from hyperpy import Request, Response
from hyperpy._core.engine import choose

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "autobahn.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hyperpy_autobahn_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


autobahn = _load()

ALL_CASES = 517
# One run takes about 10 s; this stays under pytest-timeout's 120 s.
TIMEOUT = 100
INFORMATIONAL = {"7.1.6", "7.13.1", "7.13.2"}
# Cases where the fuzzer breaks the protocol after a valid message: the message
# must be echoed before hyperpy fails the connection (else NON-STRICT).
MESSAGE_BEFORE_ERROR = {
    "3.2",
    "3.3",
    "3.4",
    "4.1.3",
    "4.1.4",
    "4.1.5",
    "4.2.3",
    "4.2.4",
    "4.2.5",
    "5.15",
}


def _check(run: Any) -> None:
    cases = {case.case_id: case for case in run.cases}
    assert len(cases) == ALL_CASES, f"only {len(cases)} cases ran"
    failed = [
        f"{c.case_id}: {c.behavior}/{c.behavior_close}"
        for c in cases.values()
        if c.outcome == "FAILED"
    ]
    assert not failed, f"Autobahn cases failed: {failed}"
    for case in cases.values():
        if case.outcome == "UNIMPLEMENTED":
            assert autobahn.category_of(case.case_id) in ("12", "13"), case
        elif case.outcome == "INFORMATIONAL":
            assert case.case_id in INFORMATIONAL, case
    assert {c.outcome for c in cases.values() if c.case_id.startswith(("12.", "13."))} == {
        "UNIMPLEMENTED"
    }
    for case_id in MESSAGE_BEFORE_ERROR:
        assert cases[case_id].outcome == "OK", cases[case_id]
    # Failing the connection sends the close code RFC 6455 §7.4.1 names for the
    # fault (a SHOULD; Autobahn also accepts a bare TCP close).
    assert cases["3.2"].remote_close_code == 1002  # reserved bit set
    assert cases["5.15"].remote_close_code == 1002  # continuation with nothing to continue
    assert cases["6.3.1"].remote_close_code == 1007  # text that is not UTF-8
    assert cases["6.4.1"].remote_close_code == 1007  # failed fast, mid-message
    assert cases["9.1.6"].outcome == "OK"  # a 16 MiB text message, echoed


@pytest.mark.slow
@interop("autobahn (kosoku)", "WebSocket", role="server")
@pytest.mark.parametrize("world", ["async", "sync"])
async def test_autobahn_cases_against_the_server(world: str) -> None:
    engine = choose()
    with trio.fail_after(TIMEOUT):
        if world == "async":
            run = await autobahn.async_server_role(engine)
        else:
            run = await trio.to_thread.run_sync(autobahn.sync_server_role, engine)
    _check(run)


@pytest.mark.slow
@interop("autobahn (kosoku)", "WebSocket", role="client")
@pytest.mark.parametrize("world", ["async", "sync"])
async def test_autobahn_cases_against_the_client(world: str) -> None:
    engine = choose()
    with trio.fail_after(TIMEOUT):
        if world == "async":
            run = await autobahn.async_client_role(engine)
        else:
            run = await trio.to_thread.run_sync(autobahn.sync_client_role, engine)
    _check(run)


async def _async_text_as_binary(request: Request) -> Response:
    assert request.upgrade is not None
    ws = await request.upgrade.accept_websocket()
    async for message in ws:
        await ws.send(message.encode() if isinstance(message, str) else message)
    return Response(200)


def _sync_text_as_binary(request: Request) -> Response:
    assert request.upgrade is not None
    ws = request.upgrade.accept_websocket()
    for message in ws:
        ws.send(message.encode() if isinstance(message, str) else message)
    return Response(200)


@interop("autobahn (kosoku)", "WebSocket", role="server")
@pytest.mark.parametrize("world", ["async", "sync"])
async def test_the_runner_fails_a_wrong_echo(world: str) -> None:
    """A control: an echo that answers text with binary must FAIL the text cases,
    so the green runs above are kosoku's verdicts, not a harness that passes all."""
    cases = ["1.1.1", "1.2.1"]  # an empty text message, an empty binary one
    if world == "async":
        run = await autobahn.async_server_role(choose(), cases, app=_async_text_as_binary)
    else:
        run = await trio.to_thread.run_sync(
            lambda: autobahn.sync_server_role(choose(), cases, app=_sync_text_as_binary)
        )
    assert {c.case_id: c.outcome for c in run.cases} == {"1.1.1": "FAILED", "1.2.1": "OK"}
