# GENERATED from tests/_async/test_tls.py by scripts/unasync.py: do not edit.
"""HTTPS with a throwaway trustme CA: verification on, off, and by CA file."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import pytest
import trustme

import hyperpy
from hyperpy import Client, Server, ServerLimits

from .helpers import app, raw_connection, read_until_eof


def test_https_request(tls_server: Server, client_ssl_context: ssl.SSLContext) -> None:
    assert tls_server.url.startswith("https://127.0.0.1:")
    with Client(verify=client_ssl_context) as client:
        response = client.get(tls_server.url + "/inspect")
        assert response.status == 200
        assert response.http_version == "1.1"
        seen = response.json()
        assert seen["http_version"] == "1.1"
        assert dict(seen["headers"])["host"] == tls_server.url.removeprefix("https://")
        for _ in range(5):
            assert (client.get(tls_server.url + "/")).text == "ok"
        assert client.connections_opened == 1


def test_https_large_bodies(tls_server: Server, client_ssl_context: ssl.SSLContext) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB each way
    with Client(verify=client_ssl_context) as client:
        upload = (client.post(tls_server.url + "/upload", content=payload)).json()
        download = client.get(tls_server.url + "/stream?n=64&size=16384")
    assert upload["total"] == len(payload)
    assert upload["sha256"] == hashlib.sha256(payload).hexdigest()
    assert len(download.content) == 64 * 16384


def test_https_localhost_name(tls_server: Server, client_ssl_context: ssl.SSLContext) -> None:
    assert tls_server.address is not None
    url = f"https://localhost:{tls_server.address[1]}/"
    with Client(verify=client_ssl_context) as client:
        try:
            response = client.get(url)
        except hyperpy.ConnectError as exc:  # localhost may resolve to ::1 only
            pytest.skip(f"localhost does not reach 127.0.0.1 here: {exc}")
    assert response.text == "ok"


def test_https_default_verify_rejects_unknown_ca(tls_server: Server) -> None:
    with Client() as client:  # the system's CAs: trustme's CA is not among them
        with pytest.raises(hyperpy.ConnectError, match=r"(?i)certificate"):
            client.get(tls_server.url + "/")
    # The failed handshake did not hurt the server.
    with Client(verify=False) as client:
        assert (client.get(tls_server.url + "/")).text == "ok"


def test_https_wrong_ca_rejected(tls_server: Server) -> None:
    other = ssl.create_default_context()
    trustme.CA().configure_trust(other)
    with Client(verify=other) as client:
        with pytest.raises(hyperpy.ConnectError, match=r"(?i)certificate"):
            client.get(tls_server.url + "/")


def test_https_verify_with_ca_file(tls_server: Server, ca: trustme.CA, tmp_path: Path) -> None:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    with Client(verify=str(path)) as client:
        assert (client.get(tls_server.url + "/")).text == "ok"


def test_https_verify_false(tls_server: Server) -> None:
    with Client(verify=False) as client:
        assert (client.get(tls_server.url + "/client")).json()["host"] == "127.0.0.1"


def test_plain_http_to_tls_port(tls_server: Server, client_ssl_context: ssl.SSLContext) -> None:
    plain = tls_server.url.replace("https://", "http://")
    with Client(timeout=3.0) as client:
        with pytest.raises(hyperpy.TransportError):
            client.get(plain + "/")
    with Client(verify=client_ssl_context) as client:
        assert (client.get(tls_server.url + "/")).text == "ok"


def test_tls_handshake_timeout(server_ssl_context: ssl.SSLContext) -> None:
    limits = ServerLimits(tls_handshake_timeout=0.3)
    with Server(app, port=0, ssl=server_ssl_context, limits=limits) as server:
        assert server.address is not None
        with raw_connection(server) as stream:
            # Never start the handshake: the server gives up and closes.
            assert read_until_eof(stream, limit=3.0) == b""
