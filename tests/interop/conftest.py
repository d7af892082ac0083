"""Records the outcome of each interop matrix cell for scripts/interop_matrix.py.

Each test marked ``@interop(...)`` (see peers.py) adds one result to
``build/interop/<engine>.json`` (or the file named by ``HYPERPY_INTEROP_REPORT``)
when the session ends. A test that ran under a given engine and world counts once;
its outcome is the worst of its phases.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hyperpy._core.engine import choose

_RESULTS: dict[str, dict[str, Any]] = {}
_RANK = {"passed": 0, "skipped": 1, "failed": 2}


def _cell(item: pytest.Item) -> dict[str, Any] | None:
    marker = item.get_closest_marker("interop")
    if marker is None:
        return None
    cell = dict(marker.kwargs)
    if cell.get("world") is None:
        params = getattr(getattr(item, "callspec", None), "params", {})
        world = params.get("world")
        if world not in ("async", "sync"):
            raise pytest.UsageError(
                f"{item.nodeid}: @interop without world= needs a 'world' parameter"
            )
        cell["world"] = world
    return cell


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    cell = _cell(item)
    if cell is None:
        return
    if report.when != "call" and report.outcome == "passed":
        return
    result = "skipped" if report.skipped else report.outcome
    previous = _RESULTS.get(item.nodeid)
    if previous is not None and _RANK[previous["outcome"]] >= _RANK[result]:
        return
    reason = ""
    if hasattr(report, "wasxfail"):
        reason = f"xfail: {report.wasxfail}"  # recorded as skipped: --check names it
    elif report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
    _RESULTS[item.nodeid] = {**cell, "test": item.nodeid, "outcome": result, "reason": reason}


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _RESULTS:
        return
    engine = choose()
    target = os.environ.get("HYPERPY_INTEROP_REPORT")
    path = (
        Path(target)
        if target
        else Path(session.config.rootpath, "build", "interop", f"{engine}.json")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "engine": engine,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "ci": bool(os.environ.get("CI")),
        "results": sorted(_RESULTS.values(), key=lambda r: r["test"]),
    }
    path.write_text(json.dumps(record, indent=1))
