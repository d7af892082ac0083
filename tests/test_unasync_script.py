"""Unit tests for scripts/unasync.py, the generator of the ``_sync`` trees.

The script is not a package module: it is loaded from its path (under a name that
cannot clash with the ``unasync`` package).
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "unasync.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hyperpy_unasync_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


unasync = _load()


def convert(source: str, used: Counter[str] | None = None) -> str:
    return str(unasync.convert_source(textwrap.dedent(source), Counter() if used is None else used))


# --- code -------------------------------------------------------------------------


def test_code_drops_async_and_await_with_the_following_space() -> None:
    source = """\
        async def fetch(client: AsyncClient) -> bytes:
            async with client.stream("GET", "/") as response:
                async for chunk in response.aiter_bytes():
                    print(await stuff(chunk))
            return await response.aread()
        """
    assert convert(source) == textwrap.dedent("""\
        def fetch(client: Client) -> bytes:
            with client.stream("GET", "/") as response:
                for chunk in response.iter_bytes():
                    print(stuff(chunk))
            return response.read()
        """)


def test_code_names_defaults_then_async_prefix() -> None:
    source = """\
        class AsyncBody(AsyncIterator[bytes]):
            def __aiter__(self): ...
            async def __anext__(self):
                raise StopAsyncIteration
        x = Asynchronous, AsyncIO, Async, AsyncTaskGroup, asynccontextmanager
        """
    assert convert(source) == textwrap.dedent("""\
        class SyncBody(Iterator[bytes]):
            def __iter__(self): ...
            def __next__(self):
                raise StopIteration
        x = Asynchronous, SyncIO, Async, SyncTaskGroup, contextmanager
        """)


def test_code_strings_are_renamed_only_when_they_are_exactly_a_name() -> None:
    source = """\
        a = ["AsyncClient", '_async', "aread", "AsyncFoo"]
        b = ["AsyncClient failed", b"aread", f"aread", "aread()"]
        c = \"\"\"AsyncClient\"\"\"
        """
    assert convert(source) == textwrap.dedent("""\
        a = ["Client", '_sync', "read", "SyncFoo"]
        b = ["AsyncClient failed", b"aread", f"aread", "aread()"]
        c = \"\"\"AsyncClient\"\"\"
        """)


def test_code_counts_the_replacements_it_applies() -> None:
    used: Counter[str] = Counter()
    convert('x = AsyncClient(); y = "aread"; z = x.aread; w = __aenter__\n', used)
    assert used == Counter({"AsyncClient": 1, "aread": 2})


# --- prose ------------------------------------------------------------------------


def test_comments_and_docstrings_read_right_for_blocking_users() -> None:
    source = '''\
        """Module: a client."""


        def f():
            """Use it like this::

                async with hyperpy.AsyncClient() as client:
                    body = await (await client.get(url)).aread()
                    await x.aclose()  # same as __aexit__

            Safe for concurrent tasks; another task may close it.
            """
            # await response.aread() gives an AsyncStream's bytes, as async for does
            return 1
        '''
    assert convert(source) == textwrap.dedent('''\
        """Module: a client."""


        def f():
            """Use it like this::

                with hyperpy.Client() as client:
                    body = (client.get(url)).read()
                    x.close()  # same as __exit__

            Safe for concurrent threads; another thread may close it.
            """
            # response.read() gives an SyncStream's bytes, as for does
            return 1
        ''')


def test_prose_use_does_not_count_and_code_strings_are_not_prose() -> None:
    used: Counter[str] = Counter()
    prose_used: Counter[str] = Counter()
    source = '''\
        """aread, aclose and AsyncClient, in prose only."""
        # aiter_bytes
        MESSAGE = """await x.aread() stays: a triple-quoted string that is code"""
        '''
    converted = unasync.convert_source(textwrap.dedent(source), used, prose_used)
    assert converted.startswith('"""read, close and Client, in prose only."""\n# iter_bytes\n')
    assert 'MESSAGE = """await x.aread() stays' in converted
    assert used == Counter()
    assert prose_used == Counter()


def test_prose_table_is_applied_first_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unasync, "PROSE", [(r"\bnursery\b", "AsyncTaskGroup")])
    prose_used: Counter[str] = Counter()
    text = unasync.convert_prose("# await nursery.start(f), in the nursery", prose_used)
    assert text == "# SyncTaskGroup.start(f), in the SyncTaskGroup"
    assert prose_used == Counter({r"\bnursery\b": 2})


# --- the SURVIVORS guard and ALLOWLIST ------------------------------------------------


GENERATED = """\
# GENERATED
def f():
    return 1  # not awaited, asynchronous, Client.read()


def g():
    \"\"\"Unlike trio, this blocks; no await here.\"\"\"
    x = response.aread()
"""


def test_guard_reports_each_survivor_with_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unasync, "ALLOWLIST", [])
    errors = unasync.find_survivors("src/pkg/_sync/m.py", GENERATED)
    assert [error.split(" survives")[0] for error in errors] == [
        "error: src/pkg/_sync/m.py:7: 'trio'",
        "error: src/pkg/_sync/m.py:7: 'await'",
        "error: src/pkg/_sync/m.py:8: 'aread('",
    ]


def test_guard_patterns() -> None:
    hits = {
        text: bool(unasync.find_survivors("m.py", text))
        for text in (
            "async  with x",
            "async def",
            "ASYNC for",
            "AsyncClient",
            "AsyncClients",
            "Trio",
            "trios",
            "awaits",
            "asynchronous with",
            "x.aread",
        )
    }
    assert hits == {
        "async  with x": True,
        "async def": True,
        "ASYNC for": False,
        "AsyncClient": True,
        "AsyncClients": False,
        "Trio": True,
        "trios": False,
        "awaits": False,
        "asynchronous with": False,
        "x.aread": False,
    }


def test_allowlist_silences_matching_hits_and_counts_use(monkeypatch: pytest.MonkeyPatch) -> None:
    allowlist = [
        ("src/pkg/_sync/*.py", r"Unlike trio"),  # both hits on line 7
        ("tests/*", r"aread"),  # another path: does not apply
    ]
    monkeypatch.setattr(unasync, "ALLOWLIST", allowlist)
    allow_used: Counter[int] = Counter()
    errors = unasync.find_survivors("src/pkg/_sync/m.py", GENERATED, allow_used)
    assert len(errors) == 1
    assert errors[0].startswith("error: src/pkg/_sync/m.py:8: 'aread(' survives in generated code")
    assert allow_used == Counter({0: 2})

    monkeypatch.setattr(unasync, "PROSE", [])
    monkeypatch.setattr(unasync, "REPLACEMENTS", {})
    generation = unasync.Generation(allow_used=allow_used)
    assert unasync.table_errors(generation) == [
        f"error: unused ALLOWLIST entry {allowlist[1]!r}: nothing it allows survives; remove it"
    ]


# --- stale rules --------------------------------------------------------------------


def test_unused_rules_are_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        unasync, "REPLACEMENTS", {"aread": "read", "aclose": "close", "aiter_x": "iter_x"}
    )
    monkeypatch.setattr(unasync, "OPTIONAL", frozenset({"aiter_x", "gone"}))
    monkeypatch.setattr(unasync, "PROSE", [(r"\bnursery\b", "task group")])
    monkeypatch.setattr(unasync, "ALLOWLIST", [])
    generation = unasync.Generation()
    # aclose appears in a comment and a docstring only: that does not count.
    code = '"""Call aclose()."""\nx = await r.aread()  # then aclose()\n'
    unasync.convert_source(code, generation.used, generation.prose_used)
    assert unasync.table_errors(generation) == [
        "error: OPTIONAL lists 'gone', which is not in REPLACEMENTS",
        "error: unused unasync rule 'aclose' -> 'close': remove it from REPLACEMENTS"
        " (or add it to OPTIONAL)",
        "error: unused PROSE rewrite '\\\\bnursery\\\\b': no comment or docstring matches it",
    ]


# --- the whole run ------------------------------------------------------------------


def test_main_writes_then_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(unasync, "ROOT", tmp_path)
    monkeypatch.setattr(unasync, "PAIRS", (("pkg/_async", "pkg/_sync"),))
    monkeypatch.setattr(unasync, "REPLACEMENTS", {"aread": "read"})
    monkeypatch.setattr(unasync, "PROSE", [])
    monkeypatch.setattr(unasync, "ALLOWLIST", [])
    source = tmp_path / "pkg" / "_async" / "mod.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        'import os\n\n\nasync def f(r):\n    """Await r."""\n    return await r.aread()\n'
    )

    assert unasync.main([]) == 0
    assert (tmp_path / "pkg" / "_sync" / "mod.py").read_text() == (
        "# GENERATED from pkg/_async/mod.py by scripts/unasync.py: do not edit.\n"
        '\n\ndef f(r):\n    """Await r."""\n    return r.read()\n'
    )
    assert unasync.main(["--check"]) == 0
    assert capsys.readouterr().out.endswith("unasync: OK, 1 sync files up to date\n")

    source.write_text(source.read_text() + "\n\n# Unlike trio: await nothing.\n")
    assert unasync.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "stale: pkg/_sync/mod.py (changed)" in err
    assert (
        "error: pkg/_sync/mod.py:9: 'trio' survives in generated code: # Unlike trio: nothing."
    ) in err


def test_main_reports_invalid_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(unasync, "ROOT", tmp_path)
    monkeypatch.setattr(unasync, "PAIRS", (("pkg/_async", "pkg/_sync"),))
    source = tmp_path / "pkg" / "_async" / "mod.py"
    source.parent.mkdir(parents=True)
    source.write_text("x = 1\nasync def f(:\n")
    assert unasync.main(["--check"]) == 1
    assert capsys.readouterr().err.startswith("error: pkg/_async/mod.py:2: ")
