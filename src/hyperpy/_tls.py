"""TLS contexts for clients and servers (one default client context per process)."""

from __future__ import annotations

import functools
import os
import ssl
from typing import Union

VerifyTypes = Union[bool, str, ssl.SSLContext]
# A client certificate: a PEM file with the key, or (certificate, key), or
# (certificate, key, password).
CertTypes = Union[str, tuple[str, str], tuple[str, str, str], None]


def _trust_context() -> ssl.SSLContext:
    """A verifying context: the operating system's trust store through ``truststore``
    where it is installed (``pip install hyperpy[truststore]``), else OpenSSL's
    default CA locations."""
    try:
        import truststore  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return ssl.create_default_context()
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=4)
def _default_client_context(alpn: tuple[str, ...]) -> ssl.SSLContext:
    # Built once per process and ALPN set: creating a client must stay cheap.
    ctx = _trust_context()
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def client_ssl_context(
    verify: VerifyTypes, alpn: tuple[str, ...], cert: CertTypes = None
) -> ssl.SSLContext:
    """The context a client uses: a shared default, a CA file or directory, or the
    user's own.

    A user's SSLContext is never mutated; ALPN (and any client certificate) must
    already be set on it.
    """
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is True and cert is None:
        return _default_client_context(alpn)
    if verify is True:
        ctx = _trust_context()
    elif verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif os.path.isdir(verify):
        ctx = ssl.create_default_context(capath=verify)
    else:
        ctx = ssl.create_default_context(cafile=verify)
    if cert is not None:
        if isinstance(cert, str):
            ctx.load_cert_chain(cert)
        elif len(cert) == 2:
            ctx.load_cert_chain(cert[0], cert[1])
        else:
            ctx.load_cert_chain(cert[0], cert[1], cert[2])  # type: ignore[misc]
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
