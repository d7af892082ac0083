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
from hyperpy._async.memory import AsyncMemoryListener, AsyncMemoryNetwork, AsyncMemoryStream
from hyperpy._backends import AsyncClock, AsyncTaskGroup

T = 5.0  # bound for waits that should end at once


async def open_pair(
    network: AsyncMemoryNetwork | None = None,
) -> tuple[AsyncMemoryNetwork, AsyncMemoryListener, AsyncMemoryStream, AsyncMemoryStream]:
    """A network, its listener, and the client and server ends of one connection."""
    network = network or AsyncMemoryNetwork()
    listener = await network.listen_tcp("127.0.0.1", 0)
    host, port = listener.address
    client = await network.connect_tcp(host, port, T)
    server = await listener.accept()
    assert server is not None
    return network, listener, client, server


async def read_all(stream: AsyncMemoryStream, count: int) -> bytes:
    """Exactly ``count`` bytes (fails on EOF or after T seconds)."""
    data = b""
    while len(data) < count:
        chunk = await stream.receive(65536, T)
        assert chunk, f"EOF after {len(data)} of {count} bytes"
        data += chunk
    return data


async def read_until_error(stream: AsyncMemoryStream) -> tuple[bytes, Exception]:
    """Everything readable before receive raises, and what it raised."""
    data = b""
    while True:
        try:
            chunk = await stream.receive(65536, T)
        except (ReadError, ReadTimeout) as exc:
            return data, exc
        assert chunk, "EOF instead of an error"
        data += chunk


async def test_bytes_both_ways_then_eof() -> None:
    _, listener, client, server = await open_pair()
    assert client.peername == listener.address == server.sockname
    assert server.peername == client.sockname
    assert client.sockname[0] == "127.0.0.1" and client.sockname[1] >= 50000
    assert not client.is_tls and client.alpn is None

    assert not server.is_readable()
    await client.send_all(b"hello", T)
    await client.send_all(bytearray(b" world"), T)
    assert server.is_readable()
    assert await server.receive(3, T) == b"hel"
    assert await read_all(server, 8) == b"lo world"
    await server.send_all(memoryview(b"answer"), T)
    assert await read_all(client, 6) == b"answer"

    await server.aclose()
    assert client.is_readable()
    assert await client.receive(65536, T) == b""
    assert await client.receive(65536, T) == b""
    await client.aclose()
    await client.aclose()  # idempotent
    await listener.aclose()


async def test_large_transfer_through_a_small_buffer() -> None:
    network = AsyncMemoryNetwork(buffer_size=64 * 1024)
    _, _, client, server = await open_pair(network)
    payload = bytes(range(256)) * 16 * 1024  # 4 MiB
    received: list[bytes] = []

    async def reader() -> None:
        received.append(await read_all(server, len(payload)))

    begin = AsyncClock.now()
    async with AsyncTaskGroup() as group:
        group.start_soon(reader)
        await client.send_all(payload, T)
    assert received == [payload]
    assert AsyncClock.now() - begin < 3.0


async def test_send_all_waits_for_room_until_the_peer_reads() -> None:
    network = AsyncMemoryNetwork(buffer_size=10)
    _, _, client, server = await open_pair(network)
    done: list[float] = []

    async def writer() -> None:
        await client.send_all(b"x" * 25, T)
        done.append(AsyncClock.now())

    async with AsyncTaskGroup() as group:
        group.start_soon(writer)
        await AsyncClock.sleep(0.2)
        assert not done  # blocked: 10 bytes in the pipe, 15 to go
        assert await server.receive(100, T) == b"x" * 10
        data = await read_all(server, 15)
    assert data == b"x" * 15
    assert done


async def test_send_all_times_out_when_the_peer_never_reads() -> None:
    network = AsyncMemoryNetwork(buffer_size=10)
    _, _, client, server = await open_pair(network)
    begin = AsyncClock.now()
    with pytest.raises(WriteTimeout):
        await client.send_all(b"x" * 11, 0.2)
    assert 0.15 < AsyncClock.now() - begin < 2.0
    assert await server.receive(100, T) == b"x" * 10  # partial progress was made


async def test_receive_times_out() -> None:
    _, _, client, _ = await open_pair()
    begin = AsyncClock.now()
    with pytest.raises(ReadTimeout):
        await client.receive(65536, 0.2)
    assert 0.15 < AsyncClock.now() - begin < 2.0
    with pytest.raises(ReadTimeout):
        await client.receive(65536, 0)


async def test_close_with_nothing_unread_is_a_fin() -> None:
    _, _, client, server = await open_pair()
    await client.send_all(b"request", T)
    assert await read_all(server, 7) == b"request"
    await server.send_all(b"response", T)
    await server.aclose()
    assert await read_all(client, 8) == b"response"
    assert await client.receive(65536, T) == b""
    await client.send_all(b"lost", T)  # accepted, as over TCP, and lost
    with pytest.raises(WriteError, match="broken pipe"):
        await client.send_all(b"more", T)
    assert await client.receive(65536, T) == b""


async def test_close_with_unread_input_is_a_reset() -> None:
    _, _, client, server = await open_pair()
    await client.send_all(b"request the server never reads", T)
    await server.send_all(b"partial response", T)
    await server.aclose()
    assert client.is_readable()
    with pytest.raises(ReadError, match="reset"):  # the unread response is lost
        await client.receive(65536, T)
    with pytest.raises(WriteError, match="reset"):
        await client.send_all(b"x", T)


async def test_own_close_makes_our_calls_fail() -> None:
    _, _, client, _ = await open_pair()
    await client.aclose()
    with pytest.raises(ReadError, match="closed"):
        await client.receive(65536, T)
    with pytest.raises(WriteError, match="closed"):
        await client.send_all(b"x", T)
    client.send_eof()  # harmless


async def test_close_wakes_blocked_receive_and_send_from_other_tasks() -> None:
    network = AsyncMemoryNetwork(buffer_size=4)
    _, _, client, server = await open_pair(network)
    errors: dict[str, tuple[type[Exception], float]] = {}

    async def own_reader() -> None:
        try:
            await client.receive(65536, T)
        except Exception as exc:
            errors["own reader"] = (type(exc), AsyncClock.now())

    async def own_writer() -> None:
        try:
            await client.send_all(b"x" * 10, T)
        except Exception as exc:
            errors["own writer"] = (type(exc), AsyncClock.now())

    async def peer_reader() -> None:
        # The client's 4 bytes, then EOF or reset (the unread input makes it a reset).
        try:
            await AsyncClock.sleep(0.5)
            while await server.receive(65536, T):
                pass
            errors["peer reader"] = (EOFError, AsyncClock.now())
        except Exception as exc:
            errors["peer reader"] = (type(exc), AsyncClock.now())

    begin = AsyncClock.now()
    async with AsyncTaskGroup() as group:
        group.start_soon(own_reader)
        group.start_soon(own_writer)
        group.start_soon(peer_reader)
        await AsyncClock.sleep(0.2)
        assert not errors
        await client.aclose()
    assert errors["own reader"][0] is ReadError
    assert errors["own writer"][0] is WriteError
    assert errors["peer reader"][0] is EOFError  # nothing unread on the client: a FIN
    assert errors["own reader"][1] - begin < 2.0
    assert errors["own writer"][1] - begin < 2.0


async def test_peer_close_wakes_blocked_receive() -> None:
    _, _, client, server = await open_pair()
    got: list[bytes] = []

    async def reader() -> None:
        got.append(await client.receive(65536, T))

    begin = AsyncClock.now()
    async with AsyncTaskGroup() as group:
        group.start_soon(reader)
        await AsyncClock.sleep(0.1)
        await server.aclose()
    assert got == [b""]
    assert AsyncClock.now() - begin < 2.0


async def test_peer_close_wakes_blocked_writer() -> None:
    network = AsyncMemoryNetwork(buffer_size=4)
    _, _, client, server = await open_pair(network)
    errors: list[Exception] = []

    async def writer() -> None:
        try:
            await client.send_all(b"x" * 10, T)
        except WriteError as exc:
            errors.append(exc)

    async with AsyncTaskGroup() as group:
        group.start_soon(writer)
        await AsyncClock.sleep(0.1)
        await server.aclose()  # 4 unread bytes: a reset
    assert len(errors) == 1 and "reset" in str(errors[0])


async def test_close_wakes_blocked_accept() -> None:
    network = AsyncMemoryNetwork()
    listener = await network.listen_tcp("127.0.0.1", 0)
    accepted: list[AsyncMemoryStream | None] = []

    async def acceptor() -> None:
        accepted.append(await listener.accept())

    begin = AsyncClock.now()
    async with AsyncTaskGroup() as group:
        group.start_soon(acceptor)
        await AsyncClock.sleep(0.1)
        await listener.aclose()
    assert accepted == [None]
    assert AsyncClock.now() - begin < 2.0
    assert await listener.accept() is None
    await listener.aclose()  # idempotent


async def test_accept_waits_for_a_connection() -> None:
    network = AsyncMemoryNetwork()
    listener = await network.listen_tcp("127.0.0.1", 8080)
    accepted: list[AsyncMemoryStream | None] = []

    async def acceptor() -> None:
        accepted.append(await listener.accept())

    async with AsyncTaskGroup() as group:
        group.start_soon(acceptor)
        await AsyncClock.sleep(0.1)
        client = await network.connect_tcp("127.0.0.1", 8080, T)
    server = accepted[0]
    assert server is not None and server.peername == client.sockname


async def test_half_close_then_keep_receiving() -> None:
    _, _, client, server = await open_pair()
    await client.send_all(b"request", T)
    client.send_eof()
    client.send_eof()  # idempotent
    with pytest.raises(WriteError):
        await client.send_all(b"more", T)
    assert await read_all(server, 7) == b"request"
    assert await server.receive(65536, T) == b""
    await server.send_all(b"response", T)
    assert await read_all(client, 8) == b"response"
    server.send_eof()
    assert await client.receive(65536, T) == b""


async def test_close_lingering_drains_so_the_peer_sees_a_fin() -> None:
    _, _, client, server = await open_pair()
    await client.send_all(b"request body the server will not read", T)
    await server.send_all(b"error response", T)
    async with AsyncTaskGroup() as group:
        group.start_soon(server.close_lingering, 2.0)
        assert await read_all(client, 14) == b"error response"
        assert await client.receive(65536, T) == b""  # the server's half-close
        await client.aclose()
    with pytest.raises(ReadError, match="closed"):
        await server.receive(65536, T)


async def test_close_lingering_gives_up_after_linger() -> None:
    _, _, client, server = await open_pair()
    await client.send_all(b"unread", T)
    begin = AsyncClock.now()
    await server.close_lingering(0.2)  # the client never closes: stop after linger
    assert 0.15 < AsyncClock.now() - begin < 2.0
    assert await client.receive(65536, T) == b""


async def test_listen_port_zero_and_address_in_use() -> None:
    network = AsyncMemoryNetwork()
    first = await network.listen_tcp("127.0.0.1", 0)
    second = await network.listen_tcp("127.0.0.1", 0)
    assert first.address[1] != 0 and second.address[1] != 0
    assert first.address != second.address
    with pytest.raises(OSError):
        await network.listen_tcp("127.0.0.1", first.address[1])
    await network.listen_tcp("10.0.0.1", first.address[1])  # another host: fine
    await first.aclose()
    again = await network.listen_tcp("127.0.0.1", first.address[1])  # freed by close
    assert again.address == first.address


async def test_connect_routing() -> None:
    network = AsyncMemoryNetwork()
    exact = await network.listen_tcp("127.0.0.1", 8000)
    other_host = await network.listen_tcp("localhost", 8000)
    other_port = await network.listen_tcp("10.0.0.1", 9000)
    stream = await network.connect_tcp("localhost", 8000, T)
    assert stream.peername == other_host.address  # exact (host, port)
    stream = await network.connect_tcp("127.0.0.1", 8000, T)
    assert stream.peername == exact.address
    stream = await network.connect_tcp("example.com", 9000, T)
    assert stream.peername == other_port.address  # the port, whatever the host
    with pytest.raises(ConnectError, match="refused"):  # several listeners: no guess
        await network.connect_tcp("example.com", 1234, T)

    single = AsyncMemoryNetwork()
    only = await single.listen_tcp("127.0.0.1", 0)
    stream = await single.connect_tcp("example.com", 443, T)
    assert stream.peername == only.address  # the only listener takes any connect


async def test_connect_refused() -> None:
    network = AsyncMemoryNetwork()
    with pytest.raises(ConnectError, match="refused"):
        await network.connect_tcp("127.0.0.1", 80, T)
    listener = await network.listen_tcp("127.0.0.1", 0)
    network.refuse_next()
    with pytest.raises(ConnectError, match="refused"):
        await network.connect_tcp("127.0.0.1", listener.address[1], T)
    await network.connect_tcp("127.0.0.1", listener.address[1], T)  # only the next one
    await listener.aclose()
    with pytest.raises(ConnectError, match="refused"):
        await network.connect_tcp("127.0.0.1", listener.address[1], T)
    assert network.connections_opened == 1


async def test_full_backlog_makes_connect_wait() -> None:
    network = AsyncMemoryNetwork()
    listener = await network.listen_tcp("127.0.0.1", 0, backlog=1)
    host, port = listener.address
    await network.connect_tcp(host, port, T)
    begin = AsyncClock.now()
    with pytest.raises(ConnectTimeout):
        await network.connect_tcp(host, port, 0.2)
    assert 0.15 < AsyncClock.now() - begin < 2.0

    async def accept_later() -> None:
        await AsyncClock.sleep(0.1)
        assert await listener.accept() is not None

    async with AsyncTaskGroup() as group:
        group.start_soon(accept_later)
        await network.connect_tcp(host, port, T)  # waits for the accept
    assert network.connections_opened == 2


async def test_closing_listener_resets_unaccepted_connections() -> None:
    network = AsyncMemoryNetwork()
    listener = await network.listen_tcp("127.0.0.1", 0)
    client = await network.connect_tcp("127.0.0.1", listener.address[1], T)
    await listener.aclose()
    with pytest.raises(ReadError, match="reset"):
        await client.receive(65536, T)
    with pytest.raises(WriteError):
        await client.send_all(b"x", T)


async def test_cut_after_to_client() -> None:
    network = AsyncMemoryNetwork()
    network.cut_after(5)
    _, _, client, server = await open_pair(network)
    await server.send_all(b"012", T)
    await server.send_all(b"34", T)  # exactly 5: no cut yet
    with pytest.raises(WriteError, match="reset"):
        await server.send_all(b"56789", T)
    data, error = await read_until_error(client)
    assert data == b"01234"
    assert isinstance(error, ReadError)
    with pytest.raises(WriteError):
        await client.send_all(b"x", T)
    with pytest.raises(WriteError):
        await server.send_all(b"x", T)
    with pytest.raises(ReadError):
        await server.receive(65536, T)


async def test_cut_after_to_server_in_one_send() -> None:
    network = AsyncMemoryNetwork()
    network.cut_after(3, direction="to_server")
    _, _, client, server = await open_pair(network)
    await server.send_all(b"greeting", T)
    with pytest.raises(WriteError):
        await client.send_all(b"abcdef", T)
    data, error = await read_until_error(server)
    assert data == b"abc"
    assert isinstance(error, ReadError)
    # The client's unread input stays readable, then the reset shows.
    data, error = await read_until_error(client)
    assert data == b"greeting"
    assert isinstance(error, ReadError)


async def test_cut_after_zero_while_the_reader_waits() -> None:
    network = AsyncMemoryNetwork()
    network.cut_after(0)
    _, _, client, server = await open_pair(network)
    results: list[tuple[bytes, Exception]] = []

    async def reader() -> None:
        results.append(await read_until_error(client))

    async with AsyncTaskGroup() as group:
        group.start_soon(reader)
        await AsyncClock.sleep(0.1)
        with pytest.raises(WriteError):
            await server.send_all(b"HTTP/1.1 200 OK\r\n", T)
    assert results[0][0] == b""
    assert isinstance(results[0][1], ReadError)


async def test_faults_apply_to_the_next_connection_only() -> None:
    network = AsyncMemoryNetwork()
    network.cut_after(1)
    _, listener, client, server = await open_pair(network)
    with pytest.raises(WriteError):
        await server.send_all(b"ab", T)
    client = await network.connect_tcp(*listener.address, T)
    server2 = await listener.accept()
    assert server2 is not None
    await server2.send_all(b"ab", T)
    assert await read_all(client, 2) == b"ab"
    with pytest.raises(ValueError):
        network.cut_after(1, direction="sideways")


async def test_stall_after() -> None:
    network = AsyncMemoryNetwork(buffer_size=16)
    network.stall_after(4)
    _, _, client, server = await open_pair(network)
    await server.send_all(b"abcdefgh", T)  # accepted, only 4 bytes delivered
    assert await read_all(client, 4) == b"abcd"
    assert not client.is_readable()
    with pytest.raises(ReadTimeout):
        await client.receive(65536, 0.2)
    with pytest.raises(WriteTimeout):  # 4 stalled bytes + 13 more overflow the 16
        await server.send_all(b"x" * 13, 0.2)
    # The other direction is untouched.
    await client.send_all(b"ping", T)
    assert await read_all(server, 4) == b"ping"
    # Closing still works and wakes a blocked reader.
    got: list[Exception] = []

    async def reader() -> None:
        try:
            await client.receive(65536, T)
        except ReadError as exc:
            got.append(exc)

    async with AsyncTaskGroup() as group:
        group.start_soon(reader)
        await AsyncClock.sleep(0.1)
        await client.aclose()
    assert len(got) == 1


async def test_delay() -> None:
    network = AsyncMemoryNetwork()
    network.delay(0.3, direction="to_client")
    _, _, client, server = await open_pair(network)
    begin = AsyncClock.now()
    await server.send_all(b"first", T)
    await server.send_all(b"second", T)
    assert not client.is_readable()
    with pytest.raises(ReadTimeout):
        await client.receive(65536, 0.1)
    assert await read_all(client, 11) == b"firstsecond"  # order kept
    elapsed = AsyncClock.now() - begin
    assert 0.25 < elapsed < 2.0
    # The other direction is not delayed.
    begin = AsyncClock.now()
    await client.send_all(b"ping", T)
    assert await read_all(server, 4) == b"ping"
    assert AsyncClock.now() - begin < 0.2


async def test_delay_then_eof() -> None:
    network = AsyncMemoryNetwork()
    network.delay(0.2)
    _, _, client, server = await open_pair(network)
    begin = AsyncClock.now()
    await server.send_all(b"bye", T)
    await server.aclose()
    assert await read_all(client, 3) == b"bye"
    assert await client.receive(65536, T) == b""
    assert 0.15 < AsyncClock.now() - begin < 2.0


async def test_start_tls_fails_clearly() -> None:
    _, _, client, server = await open_pair()
    context = ssl.create_default_context()
    with pytest.raises(ConnectError, match="TLS"):
        await client.start_tls(context, server_hostname="example.com", server_side=False, timeout=T)
    with pytest.raises(ReadError, match="http://"):
        await server.start_tls(
            context, server_hostname=None, server_side=True, timeout=T, error=ReadError
        )


async def test_connections_opened() -> None:
    network = AsyncMemoryNetwork()
    assert network.connections_opened == 0
    listener = await network.listen_tcp("127.0.0.1", 0)
    await network.connect_tcp(*listener.address, T)
    await network.connect_tcp("anywhere", 1, T)
    assert network.connections_opened == 2
