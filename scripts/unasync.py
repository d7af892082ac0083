"""Generate the sync code (``_sync`` trees) from the async code (``_async`` trees).

``python scripts/unasync.py`` regenerates ``src/hyperpy/_sync`` and ``tests/_sync``;
``python scripts/unasync.py --check`` only verifies that they are up to date (for CI).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

# This script is itself named unasync.py: its directory, first on sys.path when it runs,
# would shadow the unasync package (for mypy too, hence the untyped dynamic import).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]


def _reexec_in_project_venv() -> None:
    """Run again under the project's .venv when this Python lacks the generator's
    packages (e.g. a hook calling the system python3); else say how to get them."""
    import os

    venv = _HERE.parent / ".venv"
    venv_python = venv / "bin" / "python"
    # sys.prefix, not the executable: a venv's python resolves to the base interpreter.
    in_venv = Path(sys.prefix).resolve() == venv.resolve()
    if venv_python.exists() and not in_venv and not os.environ.get("HYPERPY_UNASYNC_REEXEC"):
        os.environ["HYPERPY_UNASYNC_REEXEC"] = "1"  # never loop
        os.execv(str(venv_python), [str(venv_python), __file__, *sys.argv[1:]])
    sys.exit(
        "unasync.py needs the unasync, tokenize_rt and ruff packages: "
        'pip install -e ".[test]" (into .venv, which this script then finds itself)'
    )


try:
    import tokenize_rt  # type: ignore[import-untyped]

    Rule: Any = importlib.import_module("unasync").Rule
except ImportError:
    _reexec_in_project_venv()

# Token replacements on top of unasync's defaults (``__aenter__`` -> ``__enter__``,
# ``AsyncIterator`` -> ``Iterator``, ... and ``AsyncFoo`` -> ``SyncFoo``). They apply to
# whole NAME tokens and to string literals whose *entire* content matches; comments and
# docstrings are never touched. Every rule must be used at least once by the generated
# code, otherwise the script fails (a stale rule is a bug): delete it, or list it in
# OPTIONAL if it is deliberately kept ahead of its use.
REPLACEMENTS: dict[str, str] = {
    # The sync client is the unprefixed public name, not unasync's default "SyncClient".
    "AsyncClient": "Client",
    # Same for the server: "Server", not "SyncServer".
    "AsyncServer": "Server",
    # Body reading method: `await response.aread()` -> `response.read()`.
    "aread": "read",
    # Resource release method: `await x.aclose()` -> `x.close()`.
    "aclose": "close",
    # Body streaming iterators: `async for chunk in r.aiter_bytes()` -> `r.iter_bytes()`.
    "aiter_bytes": "iter_bytes",
    # Tests name the world's package: `from hyperpy._async import demo` -> `hyperpy._sync`.
    "_async": "_sync",
}

# Keys of REPLACEMENTS that are allowed to be unused. Keep empty unless really needed.
OPTIONAL: frozenset[str] = frozenset()

ROOT = Path(__file__).resolve().parent.parent

# (async source dir, generated sync dir), relative to ROOT. Pairs whose source dir does
# not exist are skipped.
PAIRS: tuple[tuple[str, str], ...] = (
    ("src/hyperpy/_async", "src/hyperpy/_sync"),
    ("tests/_async", "tests/_sync"),
)

HEADER = "# GENERATED from {source} by scripts/unasync.py: do not edit.\n"

# Config files ruff would discover in ROOT, in ruff's order of precedence.
RUFF_CONFIGS = (".ruff.toml", "ruff.toml", "pyproject.toml")


class CountingRule(Rule):  # type: ignore[misc]
    """An unasync rule that records which REPLACEMENTS it has applied."""

    def __init__(self) -> None:
        super().__init__("/_async/", "/_sync/", additional_replacements=REPLACEMENTS)
        self.used: Counter[str] = Counter()

    def _unasync_name(self, name: str) -> str:
        if name in REPLACEMENTS:
            self.used[name] += 1
        result: str = super()._unasync_name(name)
        return result

    def convert(self, source: str) -> str:
        """Return the sync version of async ``source`` code."""
        tokens = tokenize_rt.src_to_tokens(source)
        result: str = tokenize_rt.tokens_to_src(self._unasync_tokens(tokens))
        return result


def _files(root: Path) -> Iterator[Path]:
    """Yield the files under ``root`` (relative to it), ignoring ``__pycache__``."""
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and "__pycache__" not in rel.parts:
            yield rel


def _generate(rule: CountingRule, pairs: Sequence[tuple[str, str]], out: Path) -> list[Path]:
    """Write the unformatted sync files of ``pairs`` under ``out``; return their paths."""
    written = []
    for source_dir, target_dir in pairs:
        for rel in _files(ROOT / source_dir):
            if rel.suffix != ".py":
                continue
            source = (ROOT / source_dir / rel).read_bytes().decode("utf-8-sig")
            header = HEADER.format(source=(Path(source_dir) / rel).as_posix())
            path = out / target_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes((header + rule.convert(source)).encode())
            written.append(path)
    return written


def _format(paths: Sequence[Path]) -> None:
    """Sort imports, drop unused ones and format ``paths`` with the project's ruff config.

    The files live in a temporary directory, so the config is passed explicitly
    (or ignored altogether with ``--isolated`` when the project has none).
    """
    config = next((ROOT / name for name in RUFF_CONFIGS if (ROOT / name).is_file()), None)
    options = ["--config", str(config)] if config else ["--isolated"]
    files = [str(path) for path in paths]
    ruff = [sys.executable, "-m", "ruff"]
    # --fix-only rather than --fix: don't fail on leftovers ruff won't fix by itself
    # (e.g. re-exports in __init__.py); those are for the linter to report on _async.
    lint = ["check", "--fix-only", "--select", "I,F401"]
    for command in (lint, ["format"]):
        subprocess.run(
            [*ruff, *command, "--no-cache", *options, "--", *files],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )


def _compare(pairs: Sequence[tuple[str, str]], out: Path) -> list[tuple[str, str]]:
    """Return ``(path, "added" | "removed" | "changed")`` for committed files that differ."""
    differences = []
    for _, target_dir in pairs:
        generated = set(_files(out / target_dir))
        committed = set(_files(ROOT / target_dir))
        for rel in sorted(generated | committed):
            path = (Path(target_dir) / rel).as_posix()
            if rel not in committed:
                differences.append((path, "added"))
            elif rel not in generated:
                differences.append((path, "removed"))
            elif (out / path).read_bytes() != (ROOT / path).read_bytes():
                differences.append((path, "changed"))
    return differences


def _apply(differences: Sequence[tuple[str, str]], out: Path, roots: Sequence[Path]) -> None:
    """Bring the committed sync trees (``roots``) in line with the generated ones in ``out``."""
    for path, kind in differences:
        if kind == "removed":
            (ROOT / path).unlink()
        else:
            (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / path, ROOT / path)
    # Drop subdirectories left empty (or holding only a __pycache__) by removals.
    for path, kind in differences:
        directory = (ROOT / path).parent
        while kind == "removed" and directory.is_dir() and directory not in roots:
            if any(child.name != "__pycache__" for child in directory.iterdir()):
                break
            shutil.rmtree(directory)
            directory = directory.parent


def main(argv: Sequence[str] | None = None) -> int:
    """Run the script; return the process exit code."""
    parser = argparse.ArgumentParser(description="Generate the _sync trees from the _async ones.")
    parser.add_argument(
        "--check",
        action="store_true",
        help="don't write anything; exit 1 if the _sync trees are out of date",
    )
    args = parser.parse_args(argv)

    pairs = [pair for pair in PAIRS if (ROOT / pair[0]).is_dir()]
    if not pairs:
        print("warning: none of the _async source directories exist yet", file=sys.stderr)
    rule = CountingRule()
    with tempfile.TemporaryDirectory(prefix="unasync-") as tmp:
        out = Path(tmp)
        generated = _generate(rule, pairs, out)
        if generated:
            try:
                _format(generated)
            except subprocess.CalledProcessError as error:
                message = (error.stderr or error.stdout).replace(tmp + "/", "").strip()
                print(f"error: ruff failed on the generated code:\n{message}", file=sys.stderr)
                return 1
        differences = _compare(pairs, out)
        if not args.check:
            _apply(differences, out, [ROOT / target for _, target in pairs])

    failed = False
    if args.check and differences:
        failed = True
        for path, kind in differences:
            print(f"stale: {path} ({kind})", file=sys.stderr)
        print("run `python scripts/unasync.py` to regenerate", file=sys.stderr)
    elif not args.check:
        for path, kind in differences:
            print(f"updated: {path} ({kind})")
    for name in sorted(OPTIONAL - REPLACEMENTS.keys()):
        failed = True
        print(f"error: OPTIONAL lists {name!r}, which is not in REPLACEMENTS", file=sys.stderr)
    for name in sorted(REPLACEMENTS.keys() - rule.used.keys() - OPTIONAL):
        failed = True
        print(
            f"error: unused unasync rule {name!r} -> {REPLACEMENTS[name]!r}: remove it from"
            " REPLACEMENTS (or add it to OPTIONAL)",
            file=sys.stderr,
        )
    if failed:
        return 1
    state = "up to date" if args.check else "generated"
    print(f"unasync: OK, {len(generated)} sync files {state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
