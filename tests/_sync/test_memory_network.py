# GENERATED from tests/_async/test_memory_network.py by scripts/unasync.py: do not edit.
"""The in-memory network of hyperpy.testing: streams, listeners, routing and faults.

Written with hyperpy's own names only (no event loop library), so the generated
sync twin runs the same tests with threads.
"""

from __future__ import annotations

import ssl

import pytest

from hyperpy import (
    ConnectError,
    ConnectTimeout,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)
from hyperpy._backends import SyncClock, SyncTaskGroup
from hyperpy._sync.memory import MemoryListener, MemoryNetwork, MemoryStream

T = 5.0  # bound for waits that should end at once


def open_pair(
    network: MemoryNetwork | None = None,
) -> tuple[MemoryNetwork, MemoryListener, MemoryStream, MemoryStream]:
    """A network, its listener, and the client and server ends of one connection."""
    network = network or MemoryNetwork()
    listener = network.listen_tcp("127.0.0.1", 0)
    host, port = listener.address
    client = network.connect_tcp(host, port, T)
    server = listener.accept()
    assert server is not None
    return network, listener, client, server


def read_all(stream: MemoryStream, count: int) -> bytes:
    """Exactly ``count`` bytes (fails on EOF or after T seconds)."""
    data = b""
    while len(data) < count:
        chunk = stream.receive(65536, T)
        assert chunk, f"EOF after {len(data)} of {count} bytes"
        data += chunk
    return data


def read_until_error(stream: MemoryStream) -> tuple[bytes, Exception]:
    """Everything readable before receive raises, and what it raised."""
    data = b""
    while True:
        try:
            chunk = stream.receive(65536, T)
        except (ReadError, ReadTimeout) as exc:
            return data, exc
        assert chunk, "EOF instead of an error"
        data += chunk


def test_bytes_both_ways_then_eof() -> None:
    _, listener, client, server = open_pair()
    assert client.peername == listener.address == server.sockname
    assert server.peername == client.sockname
    assert client.sockname[0] == "127.0.0.1" and client.sockname[1] >= 50000
    assert not client.is_tls and client.alpn is None

    assert not server.is_readable()
    client.send_all(b"hello", T)
    client.send_all(bytearray(b" world"), T)
    assert server.is_readable()
    assert server.receive(3, T) == b"hel"
    assert read_all(server, 8) == b"lo world"
    server.send_all(memoryview(b"answer"), T)
    assert read_all(client, 6) == b"answer"

    server.close()
    assert client.is_readable()
    assert client.receive(65536, T) == b""
    assert client.receive(65536, T) == b""
    client.close()
    client.close()  # idempotent
    listener.close()


def test_large_transfer_through_a_small_buffer() -> None:
    network = MemoryNetwork(buffer_size=64 * 1024)
    _, _, client, server = open_pair(network)
    payload = bytes(range(256)) * 16 * 1024  # 4 MiB
    received: list[bytes] = []

    def reader() -> None:
        received.append(read_all(server, len(payload)))

    begin = SyncClock.now()
    with SyncTaskGroup() as group:
        group.start_soon(reader)
        client.send_all(payload, T)
    assert received == [payload]
    assert SyncClock.now() - begin < 3.0


def test_send_all_waits_for_room_until_the_peer_reads() -> None:
    network = MemoryNetwork(buffer_size=10)
    _, _, client, server = open_pair(network)
    done: list[float] = []

    def writer() -> None:
        client.send_all(b"x" * 25, T)
        done.append(SyncClock.now())

    with SyncTaskGroup() as group:
        group.start_soon(writer)
        SyncClock.sleep(0.2)
        assert not done  # blocked: 10 bytes in the pipe, 15 to go
        assert server.receive(100, T) == b"x" * 10
        data = read_all(server, 15)
    assert data == b"x" * 15
    assert done


def test_send_all_times_out_when_the_peer_never_reads() -> None:
    network = MemoryNetwork(buffer_size=10)
    _, _, client, server = open_pair(network)
    begin = SyncClock.now()
    with pytest.raises(WriteTimeout):
        client.send_all(b"x" * 11, 0.2)
    assert 0.15 < SyncClock.now() - begin < 2.0
    assert server.receive(100, T) == b"x" * 10  # partial progress was made


def test_receive_times_out() -> None:
    _, _, client, _ = open_pair()
    begin = SyncClock.now()
    with pytest.raises(ReadTimeout):
        client.receive(65536, 0.2)
    assert 0.15 < SyncClock.now() - begin < 2.0
    with pytest.raises(ReadTimeout):
        client.receive(65536, 0)


def test_close_with_nothing_unread_is_a_fin() -> None:
    _, _, client, server = open_pair()
    client.send_all(b"request", T)
    assert read_all(server, 7) == b"request"
    server.send_all(b"response", T)
    server.close()
    assert read_all(client, 8) == b"response"
    assert client.receive(65536, T) == b""
    client.send_all(b"lost", T)  # accepted, as over TCP, and lost
    with pytest.raises(WriteError, match="broken pipe"):
        client.send_all(b"more", T)
    assert client.receive(65536, T) == b""


def test_close_with_unread_input_is_a_reset() -> None:
    _, _, client, server = open_pair()
    client.send_all(b"request the server never reads", T)
    server.send_all(b"partial response", T)
    server.close()
    assert client.is_readable()
    with pytest.raises(ReadError, match="reset"):  # the unread response is lost
        client.receive(65536, T)
    with pytest.raises(WriteError, match="reset"):
        client.send_all(b"x", T)


def test_own_close_makes_our_calls_fail() -> None:
    _, _, client, _ = open_pair()
    client.close()
    with pytest.raises(ReadError, match="closed"):
        client.receive(65536, T)
    with pytest.raises(WriteError, match="closed"):
        client.send_all(b"x", T)
    client.send_eof()  # harmless


def test_close_wakes_blocked_receive_and_send_from_other_tasks() -> None:
    network = MemoryNetwork(buffer_size=4)
    _, _, client, server = open_pair(network)
    errors: dict[str, tuple[type[Exception], float]] = {}

    def own_reader() -> None:
        try:
            client.receive(65536, T)
        except Exception as exc:
            errors["own reader"] = (type(exc), SyncClock.now())

    def own_writer() -> None:
        try:
            client.send_all(b"x" * 10, T)
        except Exception as exc:
            errors["own writer"] = (type(exc), SyncClock.now())

    def peer_reader() -> None:
        # The client's 4 bytes, then EOF or reset (the unread input makes it a reset).
        try:
            SyncClock.sleep(0.5)
            while server.receive(65536, T):
                pass
            errors["peer reader"] = (EOFError, SyncClock.now())
        except Exception as exc:
            errors["peer reader"] = (type(exc), SyncClock.now())

    begin = SyncClock.now()
    with SyncTaskGroup() as group:
        group.start_soon(own_reader)
        group.start_soon(own_writer)
        group.start_soon(peer_reader)
        SyncClock.sleep(0.2)
        assert not errors
        client.close()
    assert errors["own reader"][0] is ReadError
    assert errors["own writer"][0] is WriteError
    assert errors["peer reader"][0] is EOFError  # nothing unread on the client: a FIN
    assert errors["own reader"][1] - begin < 2.0
    assert errors["own writer"][1] - begin < 2.0


def test_peer_close_wakes_blocked_receive() -> None:
    _, _, client, server = open_pair()
    got: list[bytes] = []

    def reader() -> None:
        got.append(client.receive(65536, T))

    begin = SyncClock.now()
    with SyncTaskGroup() as group:
        group.start_soon(reader)
        SyncClock.sleep(0.1)
        server.close()
    assert got == [b""]
    assert SyncClock.now() - begin < 2.0


def test_peer_close_wakes_blocked_writer() -> None:
    network = MemoryNetwork(buffer_size=4)
    _, _, client, server = open_pair(network)
    errors: list[Exception] = []

    def writer() -> None:
        try:
            client.send_all(b"x" * 10, T)
        except WriteError as exc:
            errors.append(exc)

    with SyncTaskGroup() as group:
        group.start_soon(writer)
        SyncClock.sleep(0.1)
        server.close()  # 4 unread bytes: a reset
    assert len(errors) == 1 and "reset" in str(errors[0])


def test_close_wakes_blocked_accept() -> None:
    network = MemoryNetwork()
    listener = network.listen_tcp("127.0.0.1", 0)
    accepted: list[MemoryStream | None] = []

    def acceptor() -> None:
        accepted.append(listener.accept())

    begin = SyncClock.now()
    with SyncTaskGroup() as group:
        group.start_soon(acceptor)
        SyncClock.sleep(0.1)
        listener.close()
    assert accepted == [None]
    assert SyncClock.now() - begin < 2.0
    assert listener.accept() is None
    listener.close()  # idempotent


def test_accept_waits_for_a_connection() -> None:
    network = MemoryNetwork()
    listener = network.listen_tcp("127.0.0.1", 8080)
    accepted: list[MemoryStream | None] = []

    def acceptor() -> None:
        accepted.append(listener.accept())

    with SyncTaskGroup() as group:
        group.start_soon(acceptor)
        SyncClock.sleep(0.1)
        client = network.connect_tcp("127.0.0.1", 8080, T)
    server = accepted[0]
    assert server is not None and server.peername == client.sockname


def test_half_close_then_keep_receiving() -> None:
    _, _, client, server = open_pair()
    client.send_all(b"request", T)
    client.send_eof()
    client.send_eof()  # idempotent
    with pytest.raises(WriteError):
        client.send_all(b"more", T)
    assert read_all(server, 7) == b"request"
    assert server.receive(65536, T) == b""
    server.send_all(b"response", T)
    assert read_all(client, 8) == b"response"
    server.send_eof()
    assert client.receive(65536, T) == b""


def test_close_lingering_drains_so_the_peer_sees_a_fin() -> None:
    _, _, client, server = open_pair()
    client.send_all(b"request body the server will not read", T)
    server.send_all(b"error response", T)
    with SyncTaskGroup() as group:
        group.start_soon(server.close_lingering, 2.0)
        assert read_all(client, 14) == b"error response"
        assert client.receive(65536, T) == b""  # the server's half-close
        client.close()
    with pytest.raises(ReadError, match="closed"):
        server.receive(65536, T)


def test_close_lingering_gives_up_after_linger() -> None:
    _, _, client, server = open_pair()
    client.send_all(b"unread", T)
    begin = SyncClock.now()
    server.close_lingering(0.2)  # the client never closes: stop after linger
    assert 0.15 < SyncClock.now() - begin < 2.0
    assert client.receive(65536, T) == b""


def test_listen_port_zero_and_address_in_use() -> None:
    network = MemoryNetwork()
    first = network.listen_tcp("127.0.0.1", 0)
    second = network.listen_tcp("127.0.0.1", 0)
    assert first.address[1] != 0 and second.address[1] != 0
    assert first.address != second.address
    with pytest.raises(OSError):
        network.listen_tcp("127.0.0.1", first.address[1])
    network.listen_tcp("10.0.0.1", first.address[1])  # another host: fine
    first.close()
    again = network.listen_tcp("127.0.0.1", first.address[1])  # freed by close
    assert again.address == first.address


def test_connect_routing() -> None:
    network = MemoryNetwork()
    exact = network.listen_tcp("127.0.0.1", 8000)
    other_host = network.listen_tcp("localhost", 8000)
    other_port = network.listen_tcp("10.0.0.1", 9000)
    stream = network.connect_tcp("localhost", 8000, T)
    assert stream.peername == other_host.address  # exact (host, port)
    stream = network.connect_tcp("127.0.0.1", 8000, T)
    assert stream.peername == exact.address
    stream = network.connect_tcp("example.com", 9000, T)
    assert stream.peername == other_port.address  # the port, whatever the host
    with pytest.raises(ConnectError, match="refused"):  # several listeners: no guess
        network.connect_tcp("example.com", 1234, T)

    single = MemoryNetwork()
    only = single.listen_tcp("127.0.0.1", 0)
    stream = single.connect_tcp("example.com", 443, T)
    assert stream.peername == only.address  # the only listener takes any connect


def test_connect_refused() -> None:
    network = MemoryNetwork()
    with pytest.raises(ConnectError, match="refused"):
        network.connect_tcp("127.0.0.1", 80, T)
    listener = network.listen_tcp("127.0.0.1", 0)
    network.refuse_next()
    with pytest.raises(ConnectError, match="refused"):
        network.connect_tcp("127.0.0.1", listener.address[1], T)
    network.connect_tcp("127.0.0.1", listener.address[1], T)  # only the next one
    listener.close()
    with pytest.raises(ConnectError, match="refused"):
        network.connect_tcp("127.0.0.1", listener.address[1], T)
    assert network.connections_opened == 1


def test_full_backlog_makes_connect_wait() -> None:
    network = MemoryNetwork()
    listener = network.listen_tcp("127.0.0.1", 0, backlog=1)
    host, port = listener.address
    network.connect_tcp(host, port, T)
    begin = SyncClock.now()
    with pytest.raises(ConnectTimeout):
        network.connect_tcp(host, port, 0.2)
    assert 0.15 < SyncClock.now() - begin < 2.0

    def accept_later() -> None:
        SyncClock.sleep(0.1)
        assert listener.accept() is not None

    with SyncTaskGroup() as group:
        group.start_soon(accept_later)
        network.connect_tcp(host, port, T)  # waits for the accept
    assert network.connections_opened == 2


def test_closing_listener_resets_unaccepted_connections() -> None:
    network = MemoryNetwork()
    listener = network.listen_tcp("127.0.0.1", 0)
    client = network.connect_tcp("127.0.0.1", listener.address[1], T)
    listener.close()
    with pytest.raises(ReadError, match="reset"):
        client.receive(65536, T)
    with pytest.raises(WriteError):
        client.send_all(b"x", T)


def test_cut_after_to_client() -> None:
    network = MemoryNetwork()
    network.cut_after(5)
    _, _, client, server = open_pair(network)
    server.send_all(b"012", T)
    server.send_all(b"34", T)  # exactly 5: no cut yet
    with pytest.raises(WriteError, match="reset"):
        server.send_all(b"56789", T)
    data, error = read_until_error(client)
    assert data == b"01234"
    assert isinstance(error, ReadError)
    with pytest.raises(WriteError):
        client.send_all(b"x", T)
    with pytest.raises(WriteError):
        server.send_all(b"x", T)
    with pytest.raises(ReadError):
        server.receive(65536, T)


def test_cut_after_to_server_in_one_send() -> None:
    network = MemoryNetwork()
    network.cut_after(3, direction="to_server")
    _, _, client, server = open_pair(network)
    server.send_all(b"greeting", T)
    with pytest.raises(WriteError):
        client.send_all(b"abcdef", T)
    data, error = read_until_error(server)
    assert data == b"abc"
    assert isinstance(error, ReadError)
    # The client's unread input stays readable, then the reset shows.
    data, error = read_until_error(client)
    assert data == b"greeting"
    assert isinstance(error, ReadError)


def test_cut_after_zero_while_the_reader_waits() -> None:
    network = MemoryNetwork()
    network.cut_after(0)
    _, _, client, server = open_pair(network)
    results: list[tuple[bytes, Exception]] = []

    def reader() -> None:
        results.append(read_until_error(client))

    with SyncTaskGroup() as group:
        group.start_soon(reader)
        SyncClock.sleep(0.1)
        with pytest.raises(WriteError):
            server.send_all(b"HTTP/1.1 200 OK\r\n", T)
    assert results[0][0] == b""
    assert isinstance(results[0][1], ReadError)


def test_faults_apply_to_the_next_connection_only() -> None:
    network = MemoryNetwork()
    network.cut_after(1)
    _, listener, client, server = open_pair(network)
    with pytest.raises(WriteError):
        server.send_all(b"ab", T)
    client = network.connect_tcp(*listener.address, T)
    server2 = listener.accept()
    assert server2 is not None
    server2.send_all(b"ab", T)
    assert read_all(client, 2) == b"ab"
    with pytest.raises(ValueError):
        network.cut_after(1, direction="sideways")


def test_stall_after() -> None:
    network = MemoryNetwork(buffer_size=16)
    network.stall_after(4)
    _, _, client, server = open_pair(network)
    server.send_all(b"abcdefgh", T)  # accepted, only 4 bytes delivered
    assert read_all(client, 4) == b"abcd"
    assert not client.is_readable()
    with pytest.raises(ReadTimeout):
        client.receive(65536, 0.2)
    with pytest.raises(WriteTimeout):  # 4 stalled bytes + 13 more overflow the 16
        server.send_all(b"x" * 13, 0.2)
    # The other direction is untouched.
    client.send_all(b"ping", T)
    assert read_all(server, 4) == b"ping"
    # Closing still works and wakes a blocked reader.
    got: list[Exception] = []

    def reader() -> None:
        try:
            client.receive(65536, T)
        except ReadError as exc:
            got.append(exc)

    with SyncTaskGroup() as group:
        group.start_soon(reader)
        SyncClock.sleep(0.1)
        client.close()
    assert len(got) == 1


def test_delay() -> None:
    network = MemoryNetwork()
    network.delay(0.3, direction="to_client")
    _, _, client, server = open_pair(network)
    begin = SyncClock.now()
    server.send_all(b"first", T)
    server.send_all(b"second", T)
    assert not client.is_readable()
    with pytest.raises(ReadTimeout):
        client.receive(65536, 0.1)
    assert read_all(client, 11) == b"firstsecond"  # order kept
    elapsed = SyncClock.now() - begin
    assert 0.25 < elapsed < 2.0
    # The other direction is not delayed.
    begin = SyncClock.now()
    client.send_all(b"ping", T)
    assert read_all(server, 4) == b"ping"
    assert SyncClock.now() - begin < 0.2


def test_delay_then_eof() -> None:
    network = MemoryNetwork()
    network.delay(0.2)
    _, _, client, server = open_pair(network)
    begin = SyncClock.now()
    server.send_all(b"bye", T)
    server.close()
    assert read_all(client, 3) == b"bye"
    assert client.receive(65536, T) == b""
    assert 0.15 < SyncClock.now() - begin < 2.0


def test_start_tls_fails_clearly() -> None:
    _, _, client, server = open_pair()
    context = ssl.create_default_context()
    with pytest.raises(ConnectError, match="TLS"):
        client.start_tls(context, server_hostname="example.com", server_side=False, timeout=T)
    with pytest.raises(ReadError, match="http://"):
        server.start_tls(
            context, server_hostname=None, server_side=True, timeout=T, error=ReadError
        )


def test_connections_opened() -> None:
    network = MemoryNetwork()
    assert network.connections_opened == 0
    listener = network.listen_tcp("127.0.0.1", 0)
    network.connect_tcp(*listener.address, T)
    network.connect_tcp("anywhere", 1, T)
    assert network.connections_opened == 2
