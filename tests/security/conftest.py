"""Fixtures of the security probes: every probe runs against both worlds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import ServerProcess, run_server

WORLDS = ("trio", "threads")


@pytest.fixture(params=WORLDS)
def world(request: pytest.FixtureRequest) -> str:
    """``trio`` (``hyperpy.AsyncServer``) or ``threads`` (``hyperpy.Server``)."""
    world: str = request.param
    return world


@pytest.fixture(scope="module", params=WORLDS)
def shared_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """One default server per world and module, for probes that each use one
    connection and leave the server as they found it (tables of bad requests)."""
    with run_server(request.param) as server:
        yield server
