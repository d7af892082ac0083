"""What the interop tests share: finding a peer, and naming a matrix cell.

A peer program that is missing skips its tests on a developer's machine, with the
package to install in the reason; under CI (``CI`` set) it fails them instead, so
that a green CI run always means the peer really ran.

Every interop test carries ``@interop(peer, protocol, world=..., role=...)``: the
cell of the interop matrix it proves. ``tests/interop/conftest.py`` records each
cell's outcome per engine, and ``scripts/interop_matrix.py`` turns the records
into docs/interop.md.
"""

from __future__ import annotations

import os
import shutil

import pytest

# Debian packages that provide each program (what .ci/run installs).
PACKAGES = {
    "curl": "curl",
    "nghttp": "nghttp2-client",
    "h2load": "nghttp2-client",
    "nghttpd": "nghttp2-server",
    "nginx": "nginx-light",
    "tinyproxy": "tinyproxy",
    "chromium": "chromium",
}

# Where Debian puts daemons that are not on an ordinary user's PATH.
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def require(program: str) -> str:
    """The path of ``program``: a skip when it is missing locally, a failure in CI."""
    path = shutil.which(program)
    if path is None:
        for folder in _SBIN:
            candidate = os.path.join(folder, program)
            if os.access(candidate, os.X_OK):
                path = candidate
                break
    if path is None:
        package = PACKAGES.get(program, program)
        message = f"{program} is not installed (apt-get install {package})"
        if in_ci():
            pytest.fail(f"{message}: required in CI", pytrace=False)
        pytest.skip(message)
    return path


def interop(
    peer: str, protocol: str, *, world: str | None = None, role: str = "server"
) -> pytest.MarkDecorator:
    """Mark a test as one cell of the interop matrix.

    ``peer``: the program or package on the other side ("curl", "httpx", ...).
    ``protocol``: what was spoken ("HTTP/1.1", "HTTP/2 TLS", "h2c", "WebSocket", ...).
    ``world``: "async" or "sync"; when None, the test's ``world`` parameter gives it.
    ``role``: what hyperpy was, "server" (the peer is a client) or "client".
    """
    if world not in (None, "async", "sync"):
        raise ValueError(f"world must be 'async' or 'sync', not {world!r}")
    if role not in ("server", "client"):
        raise ValueError(f"role must be 'server' or 'client', not {role!r}")
    return pytest.mark.interop(peer=peer, protocol=protocol, world=world, role=role)
