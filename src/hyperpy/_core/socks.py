"""The SOCKS5 handshake (RFC 1928, RFC 1929 for username and password), sans-IO.

Built on ``socksio``, an optional extra (``pip install hyperpy[socks]``). The
driver sends ``data_to_send()`` and feeds each reply to ``receive``, until
``done``. Host names are resolved by the proxy (as for ``socks5h``), so no DNS
query leaves this machine for the target.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import MissingExtra, ProxyError


def _socks5() -> Any:
    try:
        from socksio import socks5
    except ImportError:
        raise MissingExtra(
            "SOCKS proxies need the socksio package: pip install hyperpy[socks]"
        ) from None
    return socks5


class Socks5Handshake:
    """One SOCKS5 CONNECT to ``host``:``port``, with optional username and password."""

    def __init__(self, host: str, port: int, auth: tuple[str, str] | None) -> None:
        self._s = _socks5()
        self._conn = self._s.SOCKS5Connection()
        self._target = (host, port)
        self._auth = auth
        self._step = "methods"
        self.done = False
        method = (
            self._s.SOCKS5AuthMethod.USERNAME_PASSWORD
            if auth
            else self._s.SOCKS5AuthMethod.NO_AUTH_REQUIRED
        )
        self._conn.send(self._s.SOCKS5AuthMethodsRequest([method]))

    def data_to_send(self) -> bytes:
        return bytes(self._conn.data_to_send())

    def receive(self, data: bytes) -> None:
        """Take the proxy's reply to the last message; queue the next one."""
        if not data:
            raise ProxyError("the SOCKS proxy closed the connection during the handshake")
        s = self._s
        try:
            reply = self._conn.receive_data(data)
        except s.ProtocolError as exc:
            raise ProxyError(f"the SOCKS proxy broke the protocol: {exc}") from None
        if self._step == "methods":
            if reply.method == s.SOCKS5AuthMethod.USERNAME_PASSWORD and self._auth:
                user, password = self._auth
                self._conn.send(s.SOCKS5UsernamePasswordRequest(user.encode(), password.encode()))
                self._step = "auth"
                return
            if reply.method != s.SOCKS5AuthMethod.NO_AUTH_REQUIRED:
                raise ProxyError("the SOCKS proxy accepts none of our authentication methods")
        elif self._step == "auth":
            if not reply.success:
                raise ProxyError("the SOCKS proxy rejected the username or password", status=407)
        else:
            if reply.reply_code != s.SOCKS5ReplyCode.SUCCEEDED:
                host, port = self._target
                raise ProxyError(
                    f"the SOCKS proxy could not connect to {host}:{port}: {reply.reply_code.name}"
                )
            self.done = True
            return
        self._conn.send(s.SOCKS5CommandRequest.from_address(s.SOCKS5Command.CONNECT, self._target))
        self._step = "connect"
