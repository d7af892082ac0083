"""The client and server IO logic of one world.

``client`` and ``server`` hold the two roles; ``http2_base`` the HTTP/2 plumbing
they share; ``memory`` the in-process network of ``hyperpy.testing``.
"""
