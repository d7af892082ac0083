# GENERATED from src/hyperpy/_async/__init__.py by scripts/unasync.py: do not edit.
"""The trio world: the only hand-written home of client and server IO logic.

``client`` and ``server`` hold the two roles; ``http2_base`` the HTTP/2 plumbing
they share; ``memory`` the in-process network of ``hyperpy.testing``. The
blocking world, ``hyperpy._sync``, is generated from this package by
``scripts/unasync.py``.
"""
