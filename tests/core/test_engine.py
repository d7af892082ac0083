"""Choosing the HTTP/1.1 parser engine: explicit, from the environment, or the
fastest installed."""

from __future__ import annotations

import pytest

from hyperpy import AsyncClient, AsyncServer, MissingExtra
from hyperpy._core import engine, h1_h11


def test_an_explicit_engine_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERPY_ENGINE", "zttp")
    assert engine.choose("h11") == "h11"
    assert engine.choose(" H11 ") == "h11"


def test_the_environment_chooses_next(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERPY_ENGINE", "h11")
    assert engine.choose() == "h11"


def test_the_fastest_installed_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYPERPY_ENGINE", raising=False)
    monkeypatch.setattr(engine, "_available", lambda name: True)
    assert engine.choose() == "zttp"
    monkeypatch.setattr(engine, "_available", lambda name: name == "h11")
    assert engine.choose() == "h11"


def test_unknown_and_missing_engines_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="choose one of h11, zttp"):
        engine.choose("picohttp")
    monkeypatch.setattr(engine, "_available", lambda name: name == "h11")
    with pytest.raises(MissingExtra, match=r"hyperpy\[fast\]"):
        engine.choose("zttp")


def test_clients_and_servers_take_an_engine() -> None:
    assert AsyncClient(engine="h11").engine == "h11"
    assert AsyncServer(lambda request: None, engine="h11").engine == "h11"  # type: ignore[arg-type, return-value]
    assert isinstance(engine.h1_client("h11"), h1_h11.H1Client)
