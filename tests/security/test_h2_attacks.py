"""HTTP/2 attacks from a hostile peer, against both servers (trio and threads).

Each probe drives a raw HTTP/2 connection (hand-built frames) over 127.0.0.1 to a
server in its own process, bounded in frames and in seconds, and checks the
protective behaviour; the floods also check that the server's memory stays
bounded (< 32 MiB growth) and that canary clients on their own connections are
served within 1 s throughout.

* ``test_rapid_reset``: HEADERS + RST_STREAM(CANCEL) pairs as fast as possible
  (CVE-2023-44487, "HTTP/2 Rapid Reset"). Mitigation as nghttp2's: a reset
  budget (burst 1000, refill 33/s), then GOAWAY(ENHANCE_YOUR_CALM); handlers of
  reset streams must not run on.
* ``test_rapid_reset_unread``: the same, 20,000 pairs, from a peer that never
  reads (the accept queue and the server's replies must stay bounded).
* ``test_reset_amplification``: frames on a closed stream, each answered by
  RST_STREAM(STREAM_CLOSED) (CVE-2019-9514, "Reset Flood"); RFC 9113 §5.1, §5.4.2.
* ``test_empty_data_flood``: empty DATA frames without END_STREAM
  (CVE-2019-9518, "Empty Frames Flood").
* ``test_settings_flood_unread``: SETTINGS whose ACKs are never read
  (CVE-2019-9515, "Settings Flood").
* ``test_ping_flood_unread``: PINGs whose ACKs are never read (CVE-2019-9512,
  "Ping Flood"); see also test_h2_control_flood.py.
* ``test_window_update_flood``: many valid 1-byte connection WINDOW_UPDATEs;
  the overflowing one is in the protocol-error table (RFC 9113 §6.9.1).
* ``test_priority_flood``: PRIORITY frames on 100,000 idle streams
  (CVE-2019-9513, "Resource Loop"; RFC 9113 §5.3.2 lets PRIORITY name any stream).
* ``test_continuation_flood``: HEADERS then endless CONTINUATION frames
  (CVE-2024-27316 and the April 2024 "HTTP/2 CONTINUATION flood" family); the
  header block must be cut off past 4x max_header_list_size.
* ``test_hpack_bomb``: one large dynamic-table entry referenced thousands of
  times (RFC 7541 §7.3, "HPACK bomb", CVE-2016-6581).
* ``test_tiny_data_flood``: 1-byte DATA frames on an upload stream that is read
  slowly (per-frame overhead, in the spirit of CVE-2019-9511 "Data Dribble").
* ``test_streams_over_the_limit``: more streams than MAX_CONCURRENT_STREAMS while
  the handlers are busy: the excess is refused (RFC 9113 §5.1.2, REFUSED_STREAM).
* ``test_connection_error_gets_goaway``: a table of connection errors, each of
  which must be answered by a GOAWAY with the code RFC 9113 names (§4.2, §5.1,
  §5.4.1, §6.x, §10.5; RFC 7541 for COMPRESSION_ERROR) before the close.
* ``test_malformed_request_spares_other_streams``: a request with an invalid
  ``:authority`` is a stream error (RFC 9113 §8.1.1, §8.3.1): it must not end
  the connection or a download in flight on another stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from h2.errors import ErrorCodes

from .harness import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    MAX_WINDOW,
    PING,
    PREFACE,
    PRIORITY,
    PUSH_PROMISE,
    RST_STREAM,
    SETTINGS,
    SETTINGS_ENABLE_PUSH,
    SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS,
    WINDOW_UPDATE,
    Checks,
    H2Peer,
    Outcome,
    ServerProcess,
    error_name,
    frame,
    h2_probe,
    header_block,
    headers_frame,
    probing,
    request_fields,
    rst_frame,
    settings_frame,
    window_update,
)

# write_timeout is 30 s by default: a flooder that stops reading may legitimately be
# cut off by it, so it is 2 s here to keep each probe within its time bound.
FLOOD_LIMITS = {"write_timeout": 2.0}
FLOOD_SECONDS = 10.0  # no flood sends for longer than this
END_SECONDS = 6.0  # after a flood, how long the server has to end the connection
MAX_HEADER_LIST = 16 * 1024  # H2Settings.max_header_list_size default
MAX_FRAME = 16 * 1024  # H2Settings.max_frame_size default
MAX_STREAMS = 100  # H2Settings.max_concurrent_streams default
EYC = ErrorCodes.ENHANCE_YOUR_CALM


def flood(peer: H2Peer, batches: Iterator[bytes] | list[bytes], seconds: float) -> int:
    """Send ``batches`` until the server cuts us off (as far as the reader has
    seen, if one runs), stops taking bytes, or ``seconds`` pass; how many were sent."""
    deadline = time.monotonic() + seconds
    sent = 0
    for batch in batches:
        if peer.outcome.cut_off or time.monotonic() > deadline or not peer.send(batch):
            break
        sent += 1
    return sent


# -- rapid reset ----------------------------------------------------------------------------

RAPID_RESET_PAIRS = 5000
RAPID_RESET_BATCH = 100
RESET_BURST = 1000  # nghttp2's budget: 1000 at once, then 33 per second
HANDLERS_LEFT_RUNNING = 10  # a HEADERS whose RST_STREAM came in the next read


def reset_pairs(authority: str, path: str, pairs: int, batch: int) -> list[bytes]:
    block = header_block(request_fields(authority, path))
    ids = range(1, 2 * pairs, 2)
    return [
        b"".join(headers_frame(sid, block) + rst_frame(sid) for sid in ids[i : i + batch])
        for i in range(0, pairs, batch)
    ]


def test_rapid_reset(world: str) -> None:
    """CVE-2023-44487: GOAWAY(ENHANCE_YOUR_CALM) past the reset budget, and no
    handler runs on for a stream its client reset."""
    with h2_probe(world, "rapid_reset", FLOOD_LIMITS) as probe:
        peer, checks = probe.peer, probe.checks
        batches = reset_pairs(peer.authority, "/slow?s=5", RAPID_RESET_PAIRS, RAPID_RESET_BATCH)
        peer.start_reader()
        peer.outcome.mark()
        sent = flood(peer, batches, FLOOD_SECONDS) * RAPID_RESET_BATCH
        # The handlers of the reset streams (/slow?s=5) have had a second to end.
        time.sleep(1.0)
        stats = probe.server.stats()
        outcome = peer.finish(END_SECONDS)
    checks.note(f"{sent} HEADERS+RST pairs sent; {outcome.describe()}; /slow handlers {stats}")
    checks.expect(EYC in outcome.goaway_codes(), "no GOAWAY(ENHANCE_YOUR_CALM)")
    checks.expect(outcome.ended_by_server, "the connection was not closed")
    after = outcome.cut_off_after()
    checks.expect(after is not None and after < FLOOD_SECONDS, f"cut off after {after} s")
    checks.expect(
        stats["started"] <= RESET_BURST + 100,
        f"{stats['started']} handlers started for {sent} reset streams",
    )
    checks.expect(
        stats["running"] <= HANDLERS_LEFT_RUNNING,
        f"{stats['running']} handlers of reset streams still running 1 s after the flood",
    )
    checks.verify()


def test_rapid_reset_unread(world: str) -> None:
    """CVE-2023-44487 from a peer that never reads: 20,000 pairs; the server must
    cut it off with bounded memory (its replies cannot pile up without end)."""
    with h2_probe(
        world, "rapid_reset_unread", FLOOD_LIMITS, rcvbuf=4096, send_timeout=3.0
    ) as probe:
        peer, checks = probe.peer, probe.checks
        batches = reset_pairs(peer.authority, "/", 20_000, 500)
        peer.outcome.mark()
        sent = flood(peer, batches, FLOOD_SECONDS) * 500
        outcome = peer.finish(END_SECONDS)
    checks.note(f"{sent} pairs sent without reading; {outcome.describe()}")
    checks.expect(outcome.cut_off, "not cut off (no GOAWAY, no close)")
    checks.verify()


# -- frames that make the server answer or work -------------------------------------------------

RESET_ANSWER_BUDGET = 1024  # RST_STREAMs we may elicit before the server says GOAWAY
RESET_SLACK = 76


@pytest.mark.parametrize("payload", [b"", b"x"], ids=["empty", "1-byte"])
@pytest.mark.parametrize("closed_by", ["reset", "end_stream"])
def test_reset_amplification(world: str, closed_by: str, payload: bytes) -> None:
    """CVE-2019-9514: DATA frames on a closed stream, 200,000 at most. Each one
    may earn a RST_STREAM(STREAM_CLOSED) (RFC 9113 §5.1, §5.4.2) but not without
    end: after ~1,024 the server must say GOAWAY(ENHANCE_YOUR_CALM).

    ``reset``: we reset stream 1 (a POST whose body we never finish), then send
    DATA on it. ``end_stream``: stream 1 was a complete GET; DATA after our
    END_STREAM is a connection error of type STREAM_CLOSED (RFC 9113 §5.1), so
    that GOAWAY code is right too. Empty frames may also be stopped by the
    empty-frame budget (CVE-2019-9518); 1-byte ones (200 KB, within the
    connection window) must be stopped by the reset budget.
    """
    with h2_probe(world, f"reset_amplification {closed_by}", FLOOD_LIMITS) as probe:
        peer, checks = probe.peer, probe.checks
        peer.start_reader()
        if closed_by == "reset":
            peer.request(1, "/upload?delay=0", method="POST", end_stream=False)
            peer.send(rst_frame(1, ErrorCodes.CANCEL))
            time.sleep(0.2)
        else:
            peer.request(1, "/")
            checks.expect(peer.wait_for(lambda o: 1 in o.ended, 3), "stream 1 was not answered")
        batch = frame(DATA, 0, 1, payload) * 2000
        peer.outcome.mark()
        sent = flood(peer, [batch] * 100, FLOOD_SECONDS) * 2000
        outcome = peer.finish(END_SECONDS)
    allowed = [EYC] if closed_by == "reset" else [EYC, ErrorCodes.STREAM_CLOSED]
    checks.note(f"{sent} DATA frames of {len(payload)} B on closed stream 1; {outcome.describe()}")
    checks.expect(
        outcome.rst_count <= RESET_ANSWER_BUDGET + RESET_SLACK,
        f"{outcome.rst_count} RST_STREAM frames sent back (budget ~{RESET_ANSWER_BUDGET})",
    )
    checks.expect(
        any(code in allowed for code in outcome.goaway_codes()),
        f"no GOAWAY({' or '.join(error_name(c) for c in allowed)})",
    )
    checks.expect(outcome.ended_by_server, "the connection was not closed")
    checks.verify()


def test_empty_data_flood(world: str) -> None:
    """CVE-2019-9518: empty DATA frames without END_STREAM on an open stream:
    more than 100 must earn GOAWAY(ENHANCE_YOUR_CALM)."""
    with h2_probe(world, "empty_data_flood", FLOOD_LIMITS) as probe:
        peer, checks = probe.peer, probe.checks
        peer.start_reader()
        peer.request(1, "/upload?delay=0", method="POST", end_stream=False)
        empty = frame(DATA, 0, 1) * 1000
        peer.outcome.mark()
        sent = flood(peer, [empty] * 10, FLOOD_SECONDS) * 1000
        outcome = peer.finish(END_SECONDS)
    checks.note(f"{sent} empty DATA frames on open stream 1; {outcome.describe()}")
    checks.expect(EYC in outcome.goaway_codes(), "no GOAWAY(ENHANCE_YOUR_CALM)")
    checks.expect(outcome.ended_by_server, "the connection was not closed")
    checks.verify()


def _unread_flood(world: str, one: bytes, count: int, batch: int, what: str) -> None:
    with h2_probe(
        world, f"{what} flood, unread", FLOOD_LIMITS, rcvbuf=4096, send_timeout=3.0
    ) as probe:
        peer, checks = probe.peer, probe.checks
        peer.outcome.mark()
        sent = flood(peer, [one * batch] * (count // batch), FLOOD_SECONDS) * batch
        outcome = peer.finish(END_SECONDS)
    checks.note(f"{sent} {what} sent, replies never read; {outcome.describe()}")
    checks.expect(outcome.ended_by_server, "not cut off: the connection is still open")
    after = outcome.cut_off_after()
    checks.expect(
        after is not None and after < FLOOD_SECONDS + END_SECONDS, f"cut off after {after} s"
    )
    checks.verify()


def test_settings_flood_unread(world: str) -> None:
    """CVE-2019-9515: 200,000 SETTINGS at most, their ACKs never read: cut off."""
    one = settings_frame({SETTINGS_MAX_CONCURRENT_STREAMS: 100})
    _unread_flood(world, one, 200_000, 1000, "SETTINGS")


def test_ping_flood_unread(world: str) -> None:
    """CVE-2019-9512: 200,000 PINGs at most, their ACKs never read: cut off, with
    bounded memory and the canaries served."""
    _unread_flood(world, frame(PING, 0, 0, b"12345678"), 200_000, 1000, "PINGs")


def test_window_update_flood(world: str) -> None:
    """200,000 connection WINDOW_UPDATEs of 1 (each valid): the server cuts the
    flood off, or shrugs it off (bounded memory, canaries fine, the connection
    still serves)."""
    with h2_probe(world, "window_update_flood", FLOOD_LIMITS) as probe:
        peer, checks = probe.peer, probe.checks
        peer.start_reader()
        peer.outcome.mark()
        sent = flood(peer, [window_update(0, 1) * 2000] * 100, FLOOD_SECONDS) * 2000
        served = _serves_on(peer, 1)
        outcome = peer.finish(0.5)
    checks.note(f"{sent} WINDOW_UPDATE(+1) sent; {outcome.describe()}")
    checks.expect(outcome.cut_off or served, "neither cut off nor still serving")
    checks.verify()


def test_priority_flood(world: str) -> None:
    """CVE-2019-9513: PRIORITY frames naming 200,000 idle streams: cut off, or
    harmless (bounded memory, canaries fine, the connection still serves)."""
    count = 200_000
    payload = (0).to_bytes(4, "big") + bytes((15,))  # depends on 0, weight 16
    batches = [
        b"".join(frame(PRIORITY, 0, sid, payload) for sid in range(first, first + 2 * 5000, 2))
        for first in range(1, 2 * count, 2 * 5000)
    ]
    with h2_probe(world, "priority_flood", FLOOD_LIMITS) as probe:
        peer, checks = probe.peer, probe.checks
        peer.start_reader()
        peer.outcome.mark()
        sent = flood(peer, batches, FLOOD_SECONDS) * 5000
        served = _serves_on(peer, 2 * count + 1)
        outcome = peer.finish(0.5)
    checks.note(f"{sent} PRIORITY frames sent; {outcome.describe()}")
    checks.expect(outcome.cut_off or served, "neither cut off nor still serving")
    checks.verify()


def _settled(sids: list[int]) -> Callable[[Outcome], bool]:
    """A ``wait_for`` predicate: each of ``sids`` ended or was reset, or the
    connection was cut off."""
    wanted = list(sids)
    return lambda o: o.cut_off or all(s in o.ended or s in o.rst for s in wanted)


def _serves_on(peer: H2Peer, sid: int) -> bool:
    """Unless cut off: GET / on stream ``sid`` is answered 200 within 5 s."""
    if peer.outcome.cut_off or not peer.request(sid, "/"):
        return False
    peer.wait_for(lambda o: sid in o.ended or o.ended_by_server, 5)
    return peer.outcome.status.get(sid) == 200 and sid in peer.outcome.ended


# -- header blocks -----------------------------------------------------------------------------


def test_continuation_flood(world: str) -> None:
    """CONTINUATION flood (CVE-2024-27316 family): HEADERS without END_HEADERS,
    then CONTINUATION frames for ever (32 MiB at most). The block must be cut
    off once it passes 4x max_header_list_size (64 KiB), with a GOAWAY."""
    filler_fields = [("x-filler", "a" * 100)] * 400
    filler = header_block(filler_fields)
    while len(filler) > MAX_FRAME:
        filler_fields.pop()
        filler = header_block(filler_fields)
    first = header_block(request_fields("127.0.0.1", "/"))
    cut_at: int | None = None
    with h2_probe(world, "continuation_flood", FLOOD_LIMITS) as probe:
        peer, checks = probe.peer, probe.checks
        peer.start_reader()
        peer.outcome.mark()
        peer.send(frame(HEADERS, END_STREAM, 1, first))
        block = len(first)
        deadline = time.monotonic() + FLOOD_SECONDS
        for i in range(2048):
            if peer.outcome.cut_off:
                cut_at = block
                break
            if time.monotonic() > deadline or not peer.send(frame(CONTINUATION, 0, 1, filler)):
                break
            block += len(filler)
            if i < 12:  # the first ~200 KiB slowly: how much does the server take?
                peer.wait_for(lambda o: o.cut_off, 0.25)
        outcome = peer.finish(END_SECONDS)
    checks.note(
        f"header block sent: {block} B in {len(filler)} B CONTINUATIONs; cut off at"
        f" {cut_at} B; {outcome.describe()}"
    )
    limit = 4 * MAX_HEADER_LIST + MAX_FRAME + len(first)
    checks.expect(
        cut_at is not None and cut_at <= limit,
        f"not cut off by {limit} B of header block (cut at {cut_at})",
    )
    goaway = outcome.goaway
    checks.expect(
        goaway is not None and goaway.error_code != ErrorCodes.NO_ERROR,
        f"no error GOAWAY (got {error_name(goaway.error_code if goaway else None)})",
    )
    checks.expect(outcome.ended_by_server, "the connection was not closed")
    checks.verify()


def _hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack_string(data: bytes) -> bytes:
    return _hpack_int(len(data), 7, 0x00) + data  # not Huffman-coded


def hpack_bomb(authority: str, references: int) -> bytes:
    """Insert ``x-bomb: a*4000`` into the dynamic table (4,038 of its 4,096 bytes),
    then name it ``references`` times (1 byte each: index 62)."""
    insert = b"\x40" + _hpack_string(b"x-bomb") + _hpack_string(b"a" * 4000)
    return header_block(request_fields(authority, "/")) + insert + b"\xbe" * references


def test_hpack_bomb(world: str) -> None:
    """HPACK bomb (RFC 7541 §7.3, CVE-2016-6581): 16 KiB blocks that decode to
    ~48 MB each (10 streams at most). Each is refused (RST_STREAM or GOAWAY),
    never served, and the server's memory does not grow."""
    with h2_probe(world, "hpack_bomb", FLOOD_LIMITS) as probe:
        peer, checks = probe.peer, probe.checks
        peer.start_reader()
        bomb = hpack_bomb(peer.authority, 12_000)
        assert len(bomb) <= MAX_FRAME
        peer.outcome.mark()
        sent = []
        for sid in range(1, 21, 2):
            if peer.outcome.cut_off or not peer.send(headers_frame(sid, bomb)):
                break
            sent.append(sid)
            peer.wait_for(_settled([sid]), 1.0)
        outcome = peer.finish(2.0)
    checks.note(f"bombs on streams {sent}; {outcome.describe()}")
    checks.expect(bool(sent), "no bomb could be sent")
    served = [sid for sid in sent if sid in outcome.status]
    checks.expect(not served, f"bomb streams answered as requests: {served}")
    unrefused = [sid for sid in sent if sid not in outcome.rst] if not outcome.goaways else []
    checks.expect(not unrefused, f"bomb streams neither reset nor GOAWAY'd: {unrefused}")
    checks.verify()


# -- frame sizes ---------------------------------------------------------------------------------

OVERSIZED_PEERS = 10
OVERSIZED_BODY = 4 * 1024 * 1024  # per peer: 40 MiB in all, if the server buffers it


def test_oversized_frame_is_refused_at_its_header(world: str) -> None:
    """RFC 9113 §4.2: a frame longer than SETTINGS_MAX_FRAME_SIZE (16 KiB) is a
    FRAME_SIZE_ERROR, knowable from its 9-byte header. Ten peers each declare a
    DATA frame of 16 MiB - 1 on their upload stream and send 4 MiB of it: each
    must get GOAWAY(FRAME_SIZE_ERROR) without the server buffering the body
    (40 MiB in all) first."""
    with probing(world, FLOOD_LIMITS) as probe:
        checks = Checks(f"oversized frame [{world}]")
        peers = [H2Peer(probe.server.address, send_timeout=3.0) for _ in range(OVERSIZED_PEERS)]
        try:
            for peer in peers:
                peer.handshake()
                peer.start_reader()
                peer.request(1, "/upload?delay=0", method="POST", end_stream=False)
                peer.outcome.mark()
                peer.send((2**24 - 1).to_bytes(3, "big") + frame(DATA, 0, 1)[3:])  # header only
            chunk = bytes(64 * 1024)
            deadline = time.monotonic() + FLOOD_SECONDS
            for _ in range(OVERSIZED_BODY // len(chunk)):
                for peer in peers:
                    if not peer.outcome.cut_off and time.monotonic() < deadline:
                        peer.send(chunk)
            end = time.monotonic() + 3.0
            outcomes = [peer.finish(max(0.0, end - time.monotonic())) for peer in peers]
        finally:
            for peer in peers:
                peer.close()
    checks.healthy(probe.memory, probe.canaries)
    refused = [o for o in outcomes if ErrorCodes.FRAME_SIZE_ERROR in o.goaway_codes()]
    checks.note(f"{len(refused)} of {len(peers)} refused; first: {outcomes[0].describe()}")
    checks.expect(len(refused) == len(peers), "not every oversized frame got FRAME_SIZE_ERROR")
    checks.expect(all(o.ended_by_server for o in outcomes), "not every connection was closed")
    checks.verify()


# -- body and stream abuse ----------------------------------------------------------------------


def test_tiny_data_flood(world: str) -> None:
    """1-byte DATA frames (500,000 at most, within the 1 MiB stream window) on an
    upload the handler reads slowly: per-frame bookkeeping must stay bounded
    (cut off, or memory < 32 MiB growth, canaries fine)."""
    with h2_probe(world, "tiny_data_flood", FLOOD_LIMITS) as probe:
        peer, checks = probe.peer, probe.checks
        peer.start_reader()
        peer.request(1, "/upload?delay=0.2", method="POST", end_stream=False)
        batch = frame(DATA, 0, 1, b"x") * 10_000
        peer.outcome.mark()
        sent = flood(peer, [batch] * 50, FLOOD_SECONDS) * 10_000
        outcome = peer.finish(2.0)
    checks.note(f"{sent} 1-byte DATA frames sent; {outcome.describe()}")
    checks.verify()


def test_streams_over_the_limit(world: str) -> None:
    """300 streams at once on /slow?s=2 with MAX_CONCURRENT_STREAMS = 100: the 200
    over the limit get RST_STREAM(REFUSED_STREAM), the 100 others are answered,
    at most 100 handlers run at once, memory stays bounded."""
    count = 300
    with h2_probe(world, "streams_over_the_limit", FLOOD_LIMITS) as probe:
        peer, checks = probe.peer, probe.checks
        peer.start_reader()
        block = header_block(request_fields(peer.authority, "/slow?s=2"))
        ids = list(range(1, 2 * count, 2))
        peer.outcome.mark()
        peer.send(b"".join(headers_frame(sid, block) for sid in ids))
        peer.wait_for(lambda o: all(s in o.rst or s in o.ended for s in ids), 8)
        stats = probe.server.stats()
        outcome = peer.outcome
        refused = [s for s in ids if outcome.rst.get(s) == ErrorCodes.REFUSED_STREAM]
        answered = [s for s in ids if outcome.status.get(s) == 200 and s in outcome.ended]
    checks.note(
        f"{len(refused)} refused, {len(answered)} answered; {outcome.describe()};"
        f" /slow handlers {stats}"
    )
    checks.expect(len(refused) == count - MAX_STREAMS, f"{len(refused)} streams refused")
    checks.expect(len(answered) == MAX_STREAMS, f"{len(answered)} streams answered")
    checks.expect(stats["max_running"] <= MAX_STREAMS, f"{stats['max_running']} handlers at once")
    checks.expect(not outcome.goaways, "GOAWAY for a peer that stayed within the protocol")
    checks.verify()


# -- protocol errors: the right GOAWAY ------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """A connection error: what to send after the handshake, the GOAWAY code due."""

    name: str
    build: Callable[[str], bytes]  # authority -> bytes
    code: int
    handshake: bool = True


def _get(authority: str, sid: int = 1, path: str = "/", end_stream: bool = True) -> bytes:
    return headers_frame(sid, header_block(request_fields(authority, path)), end_stream)


def _setting(ident: int, value: int) -> bytes:
    return ident.to_bytes(2, "big") + value.to_bytes(4, "big")


PROTOCOL_ERROR = ErrorCodes.PROTOCOL_ERROR
FRAME_SIZE_ERROR = ErrorCodes.FRAME_SIZE_ERROR
FLOW_CONTROL_ERROR = ErrorCodes.FLOW_CONTROL_ERROR

VIOLATIONS = [
    # RFC 7541 §2.3.3, RFC 9113 §4.3: an undecodable header block.
    Violation(
        "hpack-garbage",
        lambda a: frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xbf\x80"),
        ErrorCodes.COMPRESSION_ERROR,
    ),
    # RFC 9113 §6.5: a SETTINGS ACK with a payload.
    Violation(
        "settings-ack-with-payload",
        lambda a: frame(SETTINGS, 0x1, 0, _setting(SETTINGS_MAX_CONCURRENT_STREAMS, 100)),
        FRAME_SIZE_ERROR,
    ),
    # RFC 9113 §3.4: the preface must be followed by SETTINGS.
    Violation(
        "first-frame-not-settings",
        lambda a: PREFACE + frame(PING, 0, 0, b"12345678"),
        PROTOCOL_ERROR,
        handshake=False,
    ),
    # RFC 9113 §6.1, §6.2: DATA/HEADERS on stream 0; HEADERS on an even stream (§5.1.1).
    Violation("data-on-stream-0", lambda a: frame(DATA, 0, 0, b"x"), PROTOCOL_ERROR),
    Violation("headers-on-even-stream", lambda a: _get(a, sid=2), PROTOCOL_ERROR),
    # RFC 9113 §5.1: DATA and RST_STREAM on an idle stream.
    Violation("data-on-idle-stream", lambda a: frame(DATA, END_STREAM, 1, b"x"), PROTOCOL_ERROR),
    Violation("rst-on-idle-stream", lambda a: rst_frame(1), PROTOCOL_ERROR),
    # RFC 9113 §6.10: CONTINUATION that follows nothing; a header block interrupted.
    Violation(
        "continuation-without-headers",
        lambda a: frame(CONTINUATION, END_HEADERS, 1, header_block(request_fields(a))),
        PROTOCOL_ERROR,
    ),
    Violation(
        "headers-interrupted",
        lambda a: (
            frame(HEADERS, END_STREAM, 1, header_block(request_fields(a)))
            + frame(PING, 0, 0, b"12345678")
        ),
        PROTOCOL_ERROR,
    ),
    # RFC 9113 §5.1.1: stream ids must increase.
    Violation("stream-id-regression", lambda a: _get(a, 5) + _get(a, 3), PROTOCOL_ERROR),
    # RFC 9113 §6.9: a zero increment on the connection; §6.9.1: a window past 2^31-1.
    Violation("window-update-zero", lambda a: frame(WINDOW_UPDATE, 0, 0, bytes(4)), PROTOCOL_ERROR),
    Violation("window-update-overflow", lambda a: window_update(0, 2**30) * 3, FLOW_CONTROL_ERROR),
    Violation(
        "window-update-bad-length", lambda a: frame(WINDOW_UPDATE, 0, 0, bytes(5)), FRAME_SIZE_ERROR
    ),
    # RFC 9113 §6.5.2 and §6.5: invalid SETTINGS values and framing.
    Violation(
        "settings-initial-window-too-large",
        lambda a: frame(SETTINGS, 0, 0, _setting(SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW + 1)),
        FLOW_CONTROL_ERROR,
    ),
    Violation(
        "settings-enable-push-2",
        lambda a: frame(SETTINGS, 0, 0, _setting(SETTINGS_ENABLE_PUSH, 2)),
        PROTOCOL_ERROR,
    ),
    Violation(
        "settings-max-frame-size-too-small",
        lambda a: frame(SETTINGS, 0, 0, _setting(0x5, 100)),
        PROTOCOL_ERROR,
    ),
    Violation("settings-bad-length", lambda a: frame(SETTINGS, 0, 0, bytes(5)), FRAME_SIZE_ERROR),
    Violation("settings-on-stream", lambda a: frame(SETTINGS, 0, 1), PROTOCOL_ERROR),
    # RFC 9113 §6.7: PING framing.
    Violation("ping-bad-length", lambda a: frame(PING, 0, 0, bytes(7)), FRAME_SIZE_ERROR),
    Violation("ping-on-stream", lambda a: frame(PING, 0, 1, bytes(8)), PROTOCOL_ERROR),
    # RFC 9113 §6.4: RST_STREAM framing (on an open stream).
    Violation(
        "rst-bad-length",
        lambda a: _get(a, 1, "/slow?s=1") + frame(RST_STREAM, 0, 1, bytes(3)),
        FRAME_SIZE_ERROR,
    ),
    # RFC 9113 §4.2: a HEADERS frame past SETTINGS_MAX_FRAME_SIZE.
    Violation(
        "oversized-headers-frame",
        lambda a: frame(HEADERS, END_HEADERS | END_STREAM, 1, bytes(MAX_FRAME + 1)),
        FRAME_SIZE_ERROR,
    ),
    # RFC 9113 §8.4: a client cannot push.
    Violation(
        "push-promise-from-client",
        lambda a: (
            _get(a, 1, "/slow?s=1")
            + frame(PUSH_PROMISE, END_HEADERS, 1, (2).to_bytes(4, "big") + header_block([]))
        ),
        PROTOCOL_ERROR,
    ),
    # RFC 9113 §6.8: GOAWAY on a stream; GOAWAY too short.
    Violation("goaway-on-stream", lambda a: frame(GOAWAY, 0, 1, bytes(8)), PROTOCOL_ERROR),
    Violation("goaway-too-short", lambda a: frame(GOAWAY, 0, 0, bytes(4)), FRAME_SIZE_ERROR),
]


@pytest.mark.parametrize("violation", VIOLATIONS, ids=lambda v: v.name)
def test_connection_error_gets_goaway(shared_server: ServerProcess, violation: Violation) -> None:
    """Every connection error is answered by a GOAWAY with RFC 9113's code, then
    the close (RFC 9113 §5.4.1: "SHOULD send a GOAWAY frame ... before closing")."""
    checks = Checks(f"{violation.name} [{shared_server.url}]")
    with H2Peer(shared_server.address) as peer:
        if violation.handshake:
            peer.handshake()
        peer.outcome.mark()
        peer.send(violation.build(peer.authority))
        outcome = peer.finish(3.0)
    checks.note(outcome.describe())
    codes = outcome.goaway_codes()
    checks.expect(
        violation.code in codes,
        f"expected GOAWAY({error_name(violation.code)}), got"
        f" {[error_name(c) for c in codes] or 'no GOAWAY'}",
    )
    checks.expect(outcome.ended_by_server, "the connection was not closed")
    checks.verify()


# -- one bad request among good ones ------------------------------------------------------------

DOWNLOAD = 160 * 1024


def test_malformed_request_spares_other_streams(world: str) -> None:
    """Stream 1 downloads 160 KiB (held mid-way by flow control); stream 3 asks
    with ``:authority: [::1`` (malformed, RFC 3986 §3.2.2): stream 3 gets
    RST_STREAM(PROTOCOL_ERROR) or a 400, stream 1 completes, stream 5 is served."""
    with h2_probe(world, "malformed_request_spares_other_streams", FLOOD_LIMITS) as probe:
        peer, checks = probe.peer, probe.checks
        peer.start_reader()
        peer.request(1, f"/bytes/{DOWNLOAD}")
        checks.expect(
            peer.wait_for(lambda o: o.data[1] >= 65535, 3), "stream 1 did not start sending"
        )
        peer.request(3, "/", authority="[::1")
        peer.wait_for(lambda o: 3 in o.rst or 3 in o.status or o.cut_off, 1.0)
        peer.send(window_update(0, 1 << 20) + window_update(1, 1 << 20))
        peer.wait_for(lambda o: 1 in o.ended or o.cut_off, 5)
        peer.request(5, "/")
        peer.wait_for(lambda o: 5 in o.ended or o.ended_by_server, 3)
        outcome = peer.outcome
        log = probe.server.log()
    checks.note(outcome.describe() + f"; stream 1 got {outcome.data[1]} B")
    checks.expect(
        outcome.rst.get(3) == ErrorCodes.PROTOCOL_ERROR or outcome.status.get(3) == 400,
        f"stream 3: RST {error_name(outcome.rst.get(3))}, status {outcome.status.get(3)}",
    )
    checks.expect(
        outcome.data[1] == DOWNLOAD and 1 in outcome.ended and 1 not in outcome.rst,
        f"stream 1 got {outcome.data[1]} of {DOWNLOAD} B (reset: {1 in outcome.rst})",
    )
    checks.expect(outcome.status.get(5) == 200, "stream 5 was not served afterwards")
    checks.expect(not outcome.cut_off, "the connection was ended")
    if "Traceback" in log:
        checks.note("server log: " + log.strip().splitlines()[-1])
    checks.verify()


# -- no false alarms -------------------------------------------------------------------------


def test_legitimate_client_is_not_cut_off(world: str) -> None:
    """The budgets must not catch a busy but honest client: 300 requests in
    batches of 30, 60 of them cancelled after they started (a user navigating
    away), a PING and a SETTINGS change per batch, a PRIORITY per request, and
    DATA uploads in 16 KiB frames. No GOAWAY; every request not cancelled is
    answered 200."""
    with h2_probe(world, "legitimate_client", FLOOD_LIMITS) as probe:
        peer, checks = probe.peer, probe.checks
        peer.start_reader()
        authority = peer.authority
        slow = header_block(request_fields(authority, "/slow?s=0.2"))
        fast = header_block(request_fields(authority, "/"))
        upload = header_block(request_fields(authority, "/upload?delay=0", "POST"))
        priority = (0).to_bytes(4, "big") + bytes((15,))
        sid = 1
        kept: list[int] = []
        for _ in range(10):
            batch, cancel = [], []
            for i in range(30):
                if i < 6:
                    batch.append(headers_frame(sid, slow) + frame(PRIORITY, 0, sid, priority))
                    cancel.append(sid)
                elif i < 9:
                    batch.append(
                        headers_frame(sid, upload, end_stream=False)
                        + frame(DATA, 0, sid, b"u" * MAX_FRAME)
                        + frame(DATA, END_STREAM, sid, b"u" * 100)
                    )
                    kept.append(sid)
                else:
                    batch.append(headers_frame(sid, fast) + frame(PRIORITY, 0, sid, priority))
                    kept.append(sid)
                sid += 2
            peer.send(b"".join(batch) + frame(PING, 0, 0, b"honest!!"))
            peer.send(settings_frame({SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20}))
            time.sleep(0.05)
            peer.send(b"".join(rst_frame(s) for s in cancel))
            peer.send(window_update(0, 1 << 20))
            peer.wait_for(_settled(kept), 3)
        outcome = peer.outcome
        answered = [k for k in kept if outcome.status.get(k) == 200 and k in outcome.ended]
    checks.note(f"{len(answered)} of {len(kept)} kept requests answered; {outcome.describe()}")
    checks.expect(not outcome.cut_off, "an honest client was cut off")
    checks.expect(len(answered) == len(kept), f"{len(kept) - len(answered)} requests unanswered")
    checks.verify()
