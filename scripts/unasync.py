"""Generate the sync code (``_sync`` trees) from the async code (``_async`` trees).

``python scripts/unasync.py`` regenerates ``src/hyperpy/_sync`` and ``tests/_sync``;
``python scripts/unasync.py --check`` only verifies that they are up to date (for CI).

Every ``_async`` file goes through three steps:

1. code: its tokens are converted the way the ``unasync`` package (0.6) did it, which
   this script replicates in a few lines so as not to depend on that package's
   private API: ``async``/``await`` are dropped and names are renamed (see
   ``convert_name``);
2. prose: comments and docstrings are converted too, so the blocking API's help text
   reads right (``await client.get(...)`` becomes ``client.get(...)``);
3. ruff sorts imports, drops unused ones and formats the result.

Then a guard scans the generated files for async wording that survived (``await``,
``AsyncClient``, ``trio``, ...): such a hit fails the run unless ``ALLOWLIST`` says why
it is legitimate.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent


def _reexec_in_project_venv() -> NoReturn:
    """Run again under the project's .venv when this Python lacks the generator's
    packages (e.g. a hook calling the system python3); else say how to get them."""
    venv = ROOT / ".venv"
    venv_python = venv / "bin" / "python"
    # sys.prefix, not the executable: a venv's python resolves to the base interpreter.
    in_venv = Path(sys.prefix).resolve() == venv.resolve()
    if venv_python.exists() and not in_venv and not os.environ.get("HYPERPY_UNASYNC_REEXEC"):
        os.environ["HYPERPY_UNASYNC_REEXEC"] = "1"  # never loop
        os.execv(str(venv_python), [str(venv_python), __file__, *sys.argv[1:]])
    sys.exit(
        "unasync.py needs the tokenize_rt and ruff packages: "
        'pip install -e ".[test]" (into .venv, which this script then finds itself)'
    )


try:
    # Untyped for mypy: a single module, without a py.typed marker.
    import tokenize_rt  # type: ignore[import-untyped]
except ImportError:
    _reexec_in_project_venv()
if importlib.util.find_spec("ruff") is None:  # run as `python -m ruff`, see _format
    _reexec_in_project_venv()

# The renames the unasync package applies by default, kept as they were there.
DEFAULT_NAMES: dict[str, str] = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "asynccontextmanager": "contextmanager",
    "AsyncIterable": "Iterable",
    "AsyncIterator": "Iterator",
    "AsyncGenerator": "Generator",
    "StopAsyncIteration": "StopIteration",
}

# Renames on top of DEFAULT_NAMES (and of the catch-all ``AsyncFoo`` -> ``SyncFoo``).
# They apply to whole NAME tokens, to string literals whose *entire* content is the
# name, and to the words of comments and docstrings. Every rule must be used at least
# once by the generated *code* (prose does not count), otherwise the script fails (a
# stale rule is a bug): delete it, or list it in OPTIONAL if it is deliberately kept
# ahead of its use.
REPLACEMENTS: dict[str, str] = {
    # The sync client is the unprefixed public name, not the default "SyncClient".
    "AsyncClient": "Client",
    # Same for the server: "Server", not "SyncServer".
    "AsyncServer": "Server",
    # Body reading method: `await response.aread()` -> `response.read()`.
    "aread": "read",
    # Resource release method: `await x.aclose()` -> `x.close()`.
    "aclose": "close",
    # Body streaming iterators: `async for chunk in r.aiter_bytes()` -> `r.iter_bytes()`.
    "aiter_bytes": "iter_bytes",
    "aiter_text": "iter_text",
    "aiter_lines": "iter_lines",
    # Tests name the world's package: `from hyperpy._async import demo` -> `hyperpy._sync`.
    "_async": "_sync",
    # The blocking WebSocket is the unprefixed public name, as Client is.
    "AsyncWebSocket": "WebSocket",
    # hyperpy.testing's blocking network is the unprefixed public name, as Client is.
    "AsyncMemoryNetwork": "MemoryNetwork",
    "AsyncMemoryStream": "MemoryStream",
    "AsyncMemoryListener": "MemoryListener",
}

# Keys of REPLACEMENTS that are allowed to be unused. Keep empty unless really needed.
OPTIONAL: frozenset[str] = frozenset()

# Phrase rewrites for comments and docstrings, for wording about the trio world that
# renaming cannot fix: (regex, replacement) pairs applied in order by ``re.sub``, to
# the async source text as written (before ``await`` removal and renaming, which
# then also apply to the result). Every entry must match somewhere, like the rules
# above. Prose that only makes sense under trio is better reworded at its source.
PROSE: list[tuple[str, str]] = [
    # The blocking backend runs each task in a thread of its own, so text about
    # tasks running side by side is about threads there. ("Task group" stays: the
    # blocking world has task groups of threads.)
    (r"\b(another|other|concurrent) task(s?)\b", r"\1 thread\2"),
]

# (async source dir, generated sync dir), relative to ROOT. Pairs whose source dir does
# not exist are skipped.
PAIRS: tuple[tuple[str, str], ...] = (
    ("src/hyperpy/_async", "src/hyperpy/_sync"),
    ("tests/_async", "tests/_sync"),
)

HEADER = "# GENERATED from {source} by scripts/unasync.py: do not edit.\n"

# Config files ruff would discover in ROOT, in ruff's order of precedence.
RUFF_CONFIGS = (".ruff.toml", "ruff.toml", "pyproject.toml")

# Async wording that must not survive into a generated file, code or prose.
SURVIVORS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\bawait\b"),
    re.compile(r"\basync\s+(?:with|for|def)\b"),
    re.compile(r"\bAsyncClient\b"),
    re.compile(r"\baread\("),
    re.compile(r"\btrio\b", re.IGNORECASE),
)

# Legitimate SURVIVORS hits: (glob of the generated file's path relative to ROOT, as
# in "tests/_sync/test_*.py"; regex searched in the offending line). Each entry needs a
# comment saying why the hit is right in the sync world, and must match at least one
# hit, otherwise the script fails (like an unused rule).
ALLOWLIST: list[tuple[str, str]] = []


# --- Conversion -------------------------------------------------------------------


def convert_name(name: str, used: Counter[str] | None = None) -> str:
    """Return the sync spelling of the identifier ``name``.

    REPLACEMENTS first, then DEFAULT_NAMES, then ``AsyncFoo`` -> ``SyncFoo`` (an
    uppercase letter must follow, so ``Asynchronous`` is left alone): unasync's
    order. REPLACEMENTS keys are counted in ``used`` when given; prose passes
    nothing, so that a rule only a comment still mentions is reported as stale.
    """
    if name in REPLACEMENTS:
        if used is not None:
            used[name] += 1
        return REPLACEMENTS[name]
    if name in DEFAULT_NAMES:
        return DEFAULT_NAMES[name]
    if len(name) > 5 and name.startswith("Async") and name[5].isupper():
        return "Sync" + name[5:]
    return name


_AWAIT = re.compile(r"\bawait[ \t]+")
_ASYNC_KEYWORD = re.compile(r"\basync[ \t]+(?=(?:with|for|def)\b)")
_WORD = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")


def convert_prose(text: str, prose_used: Counter[str] | None = None) -> str:
    """Return the sync version of a comment or docstring (quotes and ``#`` included).

    PROSE first (its patterns are written against the async text), then the code
    rules where they make sense for text: ``await `` goes, ``async with``/``for``/
    ``def`` lose their ``async ``, and every word is renamed like a code name.
    Matched PROSE patterns are counted in ``prose_used`` when given.
    """
    for pattern, replacement in PROSE:
        text, count = re.subn(pattern, replacement, text)
        if prose_used is not None and count:
            prose_used[pattern] += count
    text = _AWAIT.sub("", text)
    text = _ASYNC_KEYWORD.sub("", text)
    return _WORD.sub(lambda match: convert_name(match.group()), text)


def _convert_string(src: str, used: Counter[str]) -> str:
    """Convert a code string literal whose whole content is a name (``"AsyncClient"``).

    Like unasync, which renames the text between the first and last characters of
    the token: prefixed (``b"..."``, ``f"..."``) and triple-quoted literals never
    qualify. Unlike unasync, the content must be an identifier, so that text such as
    ``"AsyncFoo failed"`` is left for the SURVIVORS guard rather than half renamed.
    """
    quote, body = src[0], src[1:-1]
    if quote in "'\"" and src[-1] == quote and body.isidentifier():
        return quote + convert_name(body, used) + quote
    return src


Position = tuple[int, int]  # (line, UTF-8 byte offset), as in ast and tokenize_rt


def _docstring_spans(source: str, filename: str) -> list[tuple[Position, Position]]:
    """Return where the string literals that are statements of their own are.

    Module, class and function docstrings, and bare strings used as comments: they
    are prose. Other string literals, triple-quoted or not, are code (e.g. an
    expected HTTP message in a test) and only get ``_convert_string``. Raises
    SyntaxError, naming ``filename``, when ``source`` is not valid Python.
    """
    spans: list[tuple[Position, Position]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            and node.end_lineno is not None
            and node.end_col_offset is not None
        ):
            spans.append(((node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)))
    return spans


def convert_source(
    source: str,
    used: Counter[str],
    prose_used: Counter[str] | None = None,
    filename: str = "<source>",
) -> str:
    """Return the sync version of the async module ``source`` (read from ``filename``).

    The code tokens come out as unasync 0.6 made them: ``async`` and ``await``
    are dropped with the space that follows them (``print(await x)`` ->
    ``print(x)``; unasync dropped the next token whatever it was, which only
    differs for code ruff would never leave, like ``await(x)``), NAME tokens go
    through ``convert_name`` and string literals through ``_convert_string``.
    Comments and docstrings go through ``convert_prose``. REPLACEMENTS applied to
    code are counted in ``used``, PROSE patterns in ``prose_used``.
    """
    docstrings = _docstring_spans(source, filename)
    parts: list[str] = []
    after_keyword = False
    for token in tokenize_rt.src_to_tokens(source):
        kind: str = token.name
        src: str = token.src
        if after_keyword:
            after_keyword = False
            if kind == tokenize_rt.UNIMPORTANT_WS:
                continue
        if kind == "NAME" and src in ("async", "await"):
            after_keyword = True
            continue
        if kind == "NAME":
            src = convert_name(src, used)
        elif kind == "COMMENT":
            src = convert_prose(src, prose_used)
        elif kind == "STRING":
            position: Position = (token.line, token.utf8_byte_offset)
            if any(start <= position < end for start, end in docstrings):
                src = convert_prose(src, prose_used)
            else:
                src = _convert_string(src, used)
        parts.append(src)
    return "".join(parts)


# --- The SURVIVORS guard ------------------------------------------------------------


def find_survivors(path: str, text: str, allow_used: Counter[int] | None = None) -> list[str]:
    """Return an error for each SURVIVORS hit in the generated file ``text``.

    ``path`` is the file's path relative to ROOT, for ALLOWLIST and the messages.
    Hits an ALLOWLIST entry covers are no error; they count in ``allow_used``
    (by entry index) when given.
    """
    lines = text.split("\n")  # as the line numbers count them (not splitlines())
    errors: list[tuple[int, str]] = []
    for pattern in SURVIVORS:
        for match in pattern.finditer(text):
            number = text.count("\n", 0, match.start()) + 1
            line = lines[number - 1]
            allowed = [
                index
                for index, (glob, line_regex) in enumerate(ALLOWLIST)
                if fnmatch.fnmatchcase(path, glob) and re.search(line_regex, line)
            ]
            if allowed:
                if allow_used is not None:
                    allow_used.update(allowed)
                continue
            message = f"{match.group()!r} survives in generated code: {line.strip()}"
            errors.append((match.start(), f"error: {path}:{number}: {message}"))
    return [message for _, message in sorted(errors)]


# --- The trees ----------------------------------------------------------------------


@dataclass
class Generation:
    """What one run generated, and which rules and allowances it used."""

    files: list[Path] = field(default_factory=list)
    used: Counter[str] = field(default_factory=Counter)  # REPLACEMENTS keys, by code
    prose_used: Counter[str] = field(default_factory=Counter)  # PROSE patterns
    allow_used: Counter[int] = field(default_factory=Counter)  # ALLOWLIST indexes


def _files(root: Path) -> Iterator[Path]:
    """Yield the files under ``root`` (relative to it), ignoring ``__pycache__``."""
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and "__pycache__" not in rel.parts:
            yield rel


def _generate(pairs: Sequence[tuple[str, str]], out: Path) -> Generation:
    """Write the unformatted sync files of ``pairs`` under ``out``.

    Raises SyntaxError when a source file is not valid Python.
    """
    generation = Generation()
    for source_dir, target_dir in pairs:
        for rel in _files(ROOT / source_dir):
            if rel.suffix != ".py":
                continue
            source = (ROOT / source_dir / rel).read_bytes().decode("utf-8-sig")
            name = (Path(source_dir) / rel).as_posix()
            code = convert_source(source, generation.used, generation.prose_used, name)
            path = out / target_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes((HEADER.format(source=name) + code).encode())
            generation.files.append(path)
    return generation


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


def generate(pairs: Sequence[tuple[str, str]], out: Path) -> Generation:
    """Write the formatted sync files of ``pairs`` under ``out``.

    Raises SyntaxError when a source file is not valid Python, and
    ``subprocess.CalledProcessError`` when ruff fails on the generated code.
    """
    generation = _generate(pairs, out)
    if generation.files:
        _format(generation.files)
    return generation


def _survivor_errors(generation: Generation, out: Path) -> list[str]:
    """Run the SURVIVORS guard on every generated file (after formatting)."""
    errors = []
    for path in generation.files:
        rel = path.relative_to(out).as_posix()
        errors += find_survivors(rel, path.read_text(encoding="utf-8"), generation.allow_used)
    return errors


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


def table_errors(generation: Generation) -> list[str]:
    """Report the entries of REPLACEMENTS, OPTIONAL, PROSE and ALLOWLIST that are stale."""
    errors = [
        f"error: OPTIONAL lists {name!r}, which is not in REPLACEMENTS"
        for name in sorted(OPTIONAL - REPLACEMENTS.keys())
    ]
    errors += [
        f"error: unused unasync rule {name!r} -> {REPLACEMENTS[name]!r}: remove it from"
        " REPLACEMENTS (or add it to OPTIONAL)"
        for name in sorted(REPLACEMENTS.keys() - generation.used.keys() - OPTIONAL)
    ]
    errors += [
        f"error: unused PROSE rewrite {pattern!r}: no comment or docstring matches it"
        for pattern, _ in PROSE
        if pattern not in generation.prose_used
    ]
    errors += [
        f"error: unused ALLOWLIST entry {entry!r}: nothing it allows survives; remove it"
        for index, entry in enumerate(ALLOWLIST)
        if index not in generation.allow_used
    ]
    return errors


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
    with tempfile.TemporaryDirectory(prefix="unasync-") as tmp:
        out = Path(tmp)
        try:
            generation = generate(pairs, out)
        except SyntaxError as error:
            print(f"error: {error.filename}:{error.lineno}: {error.msg}", file=sys.stderr)
            return 1
        except subprocess.CalledProcessError as error:
            message = (error.stderr or error.stdout).replace(tmp + "/", "").strip()
            print(f"error: ruff failed on the generated code:\n{message}", file=sys.stderr)
            return 1
        survivors = _survivor_errors(generation, out)
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
    for problem in [*table_errors(generation), *survivors]:
        failed = True
        print(problem, file=sys.stderr)
    if failed:
        return 1
    state = "up to date" if args.check else "generated"
    print(f"unasync: OK, {len(generation.files)} sync files {state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
