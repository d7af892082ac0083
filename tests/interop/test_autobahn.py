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

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from peers import interop

from hyperpy._core.engine import choose

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "autobahn.py"


def _run(tmp_path: Path, role: str, world: str, *args: str) -> Any:
    """One run of the harness in a child process: kosoku puts Python 2 shims (a
    ``pkg_resources`` among them) first on ``sys.path`` and patches ``binascii``,
    which must not leak into the rest of the test session."""
    out = tmp_path / f"{role}-{world}.json"
    command = [
        sys.executable,
        str(SCRIPT),
        *("--engine", choose(), "--role", role, "--world", world),
        *("--out", str(tmp_path / "page.md"), "--json", str(out), *args),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, env=dict(os.environ)
    )
    assert out.exists(), f"the harness ended with {done.returncode}: {done.stderr[-2000:]}"
    [record] = json.loads(out.read_text())
    record["cases"] = [SimpleNamespace(**case) for case in record["cases"]]
    return SimpleNamespace(**record)


def category_of(case_id: str) -> str:
    return case_id.split(".", 1)[0]


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
            assert category_of(case.case_id) in ("12", "13"), case
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
def test_autobahn_cases_against_the_server(world: str, tmp_path: Path) -> None:
    _check(_run(tmp_path, "server", world))


@pytest.mark.slow
@interop("autobahn (kosoku)", "WebSocket", role="client")
@pytest.mark.parametrize("world", ["async", "sync"])
def test_autobahn_cases_against_the_client(world: str, tmp_path: Path) -> None:
    _check(_run(tmp_path, "client", world))


@pytest.mark.parametrize("world", ["async", "sync"])  # the harness's check, not a cell
def test_the_runner_fails_a_wrong_echo(world: str, tmp_path: Path) -> None:
    """A control: an echo that answers text with binary must FAIL the text cases,
    so the green runs above are kosoku's verdicts, not a harness that passes all."""
    run = _run(tmp_path, "server", world, "--case", "1.1.1", "--case", "1.2.1", "--wrong-echo")
    assert {c.case_id: c.outcome for c in run.cases} == {"1.1.1": "FAILED", "1.2.1": "OK"}
