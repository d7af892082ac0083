"""TLS contexts for clients and servers (one default client context per process)."""

from __future__ import annotations

import functools
import ssl
from typing import Union

VerifyTypes = Union[bool, str, ssl.SSLContext]


@functools.lru_cache(maxsize=4)
def _default_client_context(alpn: tuple[str, ...]) -> ssl.SSLContext:
    # Built once per process and ALPN set: creating a client must stay cheap.
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def client_ssl_context(verify: VerifyTypes, alpn: tuple[str, ...]) -> ssl.SSLContext:
    """The context a client uses: a shared default, a CA file, or the user's own.

    A user's SSLContext is never mutated; ALPN must already be set on it if
    HTTP/2 over TLS is wanted.
    """
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is True:
        return _default_client_context(alpn)
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=verify)
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def server_ssl_context(
    ssl_arg: ssl.SSLContext | None,
    certfile: str | None,
    keyfile: str | None,
    alpn: tuple[str, ...],
) -> ssl.SSLContext | None:
    """The server's context: the user's (untouched), or one built from cert files."""
    if ssl_arg is not None:
        return ssl_arg
    if certfile is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile, keyfile)
    ctx.set_alpn_protocols(list(alpn))
    return ctx
