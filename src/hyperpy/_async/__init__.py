"""The async (trio) world: the only hand-written home of client and server IO logic.

``hyperpy._sync`` is generated from this package by ``scripts/unasync.py``.
"""
