"""MkDocs hook: stand-ins for the pages that scripts write, when they are missing.

``docs/interop.md`` (scripts/interop_matrix.py, from a run of tests/interop) and
``docs/websocket-conformance.md`` (from the WebSocket conformance run) are
generated, not written by hand. A checkout that has not produced them still
builds with ``--strict``: each missing page becomes a short page saying how to
produce it, so the navigation never points at nothing.
"""

from __future__ import annotations

from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

GENERATED = {
    "interop.md": (
        "Interop matrix",
        "This page is generated from a run of the interop tests:\n\n"
        "```sh\n"
        "HYPERPY_ENGINE=h11 python -m pytest -q tests/interop\n"
        "HYPERPY_ENGINE=zttp python -m pytest -q tests/interop\n"
        "python scripts/interop_matrix.py\n"
        "```\n\n"
        "Each test in `tests/interop` names the cell it proves: a peer (curl, nghttp,"
        " nginx, httpx, ...), a protocol, hyperpy's world (trio or blocking) and its"
        " role (server or client). The script writes one table per role, a row per"
        " peer and protocol, a column per world and engine.\n",
    ),
    "websocket-conformance.md": (
        "WebSocket conformance",
        "This page is generated from a run of the WebSocket conformance suite"
        " (autobahn test cases, through kosoku) against hyperpy's WebSocket client"
        " and server, in both worlds: `python scripts/autobahn.py` writes it.\n",
    ),
}


def on_files(files: Files, *, config: MkDocsConfig, **_: Any) -> Files:
    """Add a stand-in for each generated page that does not exist."""
    for name, (title, body) in GENERATED.items():
        if files.get_file_from_path(name) is None:
            content = f'# {title}\n\n!!! note "Not generated in this build"\n\n'
            content += "".join(f"    {line}\n" if line else "\n" for line in body.splitlines())
            files.append(File.generated(config, name, content=content))
    return files
