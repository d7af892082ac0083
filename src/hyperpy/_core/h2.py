"""HTTP/2 as a sans-IO state machine: h2 wrapped with hyperpy's stream table,
flow-control policy and GOAWAY handling.

Why a layer over h2:
- Flow control: stream credit goes back to the peer only as the application
  consumes data, so a slow reader bounds what we buffer per stream; connection
  credit goes back on receipt while the whole connection buffers little, so one
  slow stream does not stall the others, and only as data is consumed past
  that, so the connection's memory stays bounded too.
- GOAWAY: h2 treats a received GOAWAY as the end of the connection and rejects
  every later frame, so streams the peer promised to finish could never end.
  GOAWAY frames are therefore taken out of the byte stream here and handled by
  us; h2 never sees them. Our own graceful GOAWAY is likewise written directly,
  keeping h2 open for the streams in flight.
- Limits: our advertised settings (h2's 16 MiB-capable defaults are not ours).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack.exceptions
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from .._config import H2Settings
from .._exceptions import LocalProtocolError, RemoteProtocolError
from .h2_frames import RST_STREAM, FrameGuard, ProtocolViolation, count_frames

__all__ = [
    "PREFACE",
    "Changes",
    "ErrorCodes",
    "GoAway",
    "H2Protocol",
    "StreamState",
    "upgrade_settings_valid",
]

Fields = list[tuple[bytes, bytes]]

# The client connection preface (RFC 9113 §3.4): how an h2c prior-knowledge
# connection starts, and what the server looks for to detect one.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_H2_DEFAULT_WINDOW = 65535
# DATA payloads below this size are joined in a stream's buffer (see ``_on_data``).
_SMALL = 4096


@dataclass
class StreamState:
    """What we know of one stream; the drivers read it under their state lock."""

    stream_id: int
    headers: list[tuple[bytes, bytes]] | None = None
    # (data, flow length); small payloads joined in a bytearray (see ``_on_data``)
    chunks: deque[tuple[bytes | bytearray, int]] = field(default_factory=deque)
    buffered: int = 0
    ended: bool = False  # END_STREAM received: no more data will come
    trailers: list[tuple[bytes, bytes]] | None = None
    reset_code: int | None = None
    reset_remote: bool = True
    unacked: int = 0  # consumed bytes whose stream credit is not yet returned
    sent_end: bool = False  # we sent END_STREAM (or reset)
    refused: bool = False  # above a GOAWAY's last-stream-id: never processed


@dataclass
class GoAway:
    error_code: int
    last_stream_id: int
    debug: bytes = b""


@dataclass
class Changes:
    """What one ``receive`` changed, for the driver to act on."""

    streams: set[int] = field(default_factory=set)  # streams with news for their reader
    new_streams: list[int] = field(default_factory=list)  # server: requests to handle
    reset: list[int] = field(default_factory=list)  # streams the peer reset
    window: bool = False  # send windows or stream slots may have opened
    goaway: GoAway | None = None


class _H2Connection(h2.connection.H2Connection):
    """h2 with our own enforcement of MAX_CONCURRENT_STREAMS, and a short memory.

    h2 treats a stream over the limit as a connection error and ends every
    stream in flight; RFC 9113 §5.1.2 allows a stream error, so we refuse just
    that stream (RST_STREAM REFUSED_STREAM, see ``H2Protocol._on_event``).
    The count is still computed, since computing it retires closed streams.

    h2 remembers how each retired stream closed, up to 65,536 per connection
    (about 150 bytes each: 10 MiB for one long-lived connection, grown slowly
    over its first 65,536 requests). The record only decides how late frames
    on a stream we reset are answered (a stream error rather than a connection
    error), which matters for the streams of the last moments: ten times the
    concurrent-stream limit is plenty.
    """

    MAX_CLOSED_STREAMS = 1024

    @property
    def open_inbound_streams(self) -> int:
        count: int = super().open_inbound_streams
        return min(count, self.local_settings.max_concurrent_streams - 1)


def _error_code(exc: h2.exceptions.ProtocolError) -> int:
    """The GOAWAY code for the engine's error: a header block that cannot be decoded
    is a COMPRESSION_ERROR (RFC 9113 §4.3), which h2 reports as PROTOCOL_ERROR."""
    if isinstance(exc.__cause__, (hpack.exceptions.HPACKError, IndexError, UnicodeDecodeError)):
        return ErrorCodes.COMPRESSION_ERROR
    return int(exc.error_code)


def _error_name(code: int) -> str:
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"error {code}"


class H2Protocol:
    """One HTTP/2 connection's protocol state (client or server side)."""

    def __init__(self, client_side: bool, settings: H2Settings) -> None:
        config = h2.config.H2Configuration(
            client_side=client_side,
            header_encoding=None,
            validate_inbound_headers=True,
            normalize_inbound_headers=True,
            validate_outbound_headers=True,
        )
        self.h2 = _H2Connection(config)
        self.client_side = client_side
        self.settings = settings
        self.streams: dict[int, StreamState] = {}
        self.goaway_received: GoAway | None = None
        self.goaway_sent: int | None = None  # last-stream-id we promised to finish
        self.failure_reason: str | None = None  # set when the connection is unusable
        self._total_buffered = 0
        self._conn_unacked = 0
        self._conn_pending = 0  # connection credit due, held back until worth a frame
        self._guard = FrameGuard(client_side, settings, len(PREFACE))
        self._received_out: list[bytes] = []  # what the engine said while receiving
        self._local_resets = 0  # RST_STREAM frames the peer made us send
        self._ended = False  # our final GOAWAY is out: the peer's frames are ignored

    # -- set-up -------------------------------------------------------------

    def start(self) -> None:
        """Queue our preface and SETTINGS."""
        self.h2.initiate_connection()
        self._local_settings()

    def start_upgraded(self, settings_header: bytes) -> None:
        """Server side of ``Upgrade: h2c``: stream 1 is the upgraded request."""
        self.h2.initiate_upgrade_connection(settings_header)
        self._local_settings()

    def _local_settings(self) -> None:
        s = self.settings
        codes = h2.settings.SettingCodes
        self.h2.update_settings(
            {
                codes.MAX_CONCURRENT_STREAMS: s.max_concurrent_streams,
                codes.INITIAL_WINDOW_SIZE: s.initial_window_size,
                codes.MAX_FRAME_SIZE: s.max_frame_size,
                codes.MAX_HEADER_LIST_SIZE: s.max_header_list_size,
                codes.ENABLE_PUSH: 0,
            }
        )
        if s.connection_window_size > _H2_DEFAULT_WINDOW:
            self.h2.increment_flow_control_window(s.connection_window_size - _H2_DEFAULT_WINDOW)

    def data_to_send(self) -> bytes:
        """Everything to write to the peer, in order."""
        if self._received_out:
            self._received_out.append(self.h2.data_to_send())
            data = b"".join(self._received_out)
            self._received_out.clear()
            return data
        return self.h2.data_to_send()

    # -- receiving ------------------------------------------------------------

    def receive(self, data: bytes, now: float = 0.0) -> Changes:
        """Feed bytes from the peer (``now``: the backend's clock, for the rate
        budgets); returns what changed.

        Raises RemoteProtocolError if the peer broke the protocol or an abuse
        limit; our GOAWAY with the matching error code is then queued in
        ``data_to_send``, and nothing else is.
        """
        changes = Changes()
        if self._ended:
            # After our final GOAWAY the engine is closed and would reject the peer's
            # last frames (its credit for our last DATA, say); they change nothing.
            return changes
        try:
            for chunk, is_goaway in self._guard.split(data, now):
                if is_goaway:
                    self._on_goaway(chunk, changes)
                    continue
                events = self.h2.receive_data(chunk)
                for event in events:
                    self._on_event(event, changes)
                self._count_local_resets()
        except ProtocolViolation as exc:
            self._abort(exc.code, str(exc))
        except h2.exceptions.ProtocolError as exc:
            self._abort(_error_code(exc), f"protocol error from the peer: {exc}")
        if changes.new_streams:
            # A stream the peer reset in the same breath as it opened it (rapid reset)
            # never reaches a handler.
            reset = [sid for sid in changes.new_streams if self.streams[sid].reset_code is not None]
            for sid in reset:
                changes.new_streams.remove(sid)
                self.forget(sid)
        return changes

    def _count_local_resets(self) -> None:
        """Count the resets the engine sent on its own (a frame on a closed stream)
        or that we sent while receiving (a refused stream); cut off past the limit."""
        out = self.h2.data_to_send()
        if not out:
            return
        self._received_out.append(out)
        self._local_resets += count_frames(out, RST_STREAM)
        if self._local_resets > self.settings.local_reset_limit:
            raise ProtocolViolation(
                ErrorCodes.ENHANCE_YOUR_CALM, "the peer keeps causing stream resets"
            )

    def _abort(self, code: int, reason: str) -> None:
        """End the connection for a protocol error: GOAWAY(code) is all that goes out."""
        self.h2.clear_outbound_data_buffer()
        self._received_out = [
            GoAwayFrame(0, last_stream_id=self._last_stream_id(), error_code=code).serialize()
        ]
        self._ended = True
        self.failure_reason = f"{reason} ({_error_name(code)})"
        raise RemoteProtocolError(self.failure_reason)

    def _last_stream_id(self) -> int:
        if self.goaway_sent is not None:
            return self.goaway_sent
        return int(self.h2.highest_inbound_stream_id)

    def _on_goaway(self, payload: bytes, changes: Changes) -> None:
        # The frame guard let through only GOAWAYs on stream 0 of 8 bytes or more.
        frame = GoAwayFrame(0)
        frame.parse_body(memoryview(payload))
        goaway = GoAway(frame.error_code, frame.last_stream_id, frame.additional_data)
        self.goaway_received = goaway
        changes.goaway = goaway
        changes.window = True
        for stream_id, stream in self.streams.items():
            if self._is_ours(stream_id) and stream_id > goaway.last_stream_id:
                stream.refused = True
                changes.streams.add(stream_id)

    def _is_ours(self, stream_id: int) -> bool:
        return (stream_id % 2 == 1) == self.client_side

    def _on_event(self, event: h2.events.Event, changes: Changes) -> None:
        kind = type(event)
        if kind is h2.events.DataReceived:
            assert isinstance(event, h2.events.DataReceived)
            self._on_data(event.stream_id, event.data, event.flow_controlled_length, changes)
        elif kind is h2.events.ResponseReceived or kind is h2.events.RequestReceived:
            assert isinstance(event, (h2.events.ResponseReceived, h2.events.RequestReceived))
            sid = event.stream_id
            stream = self.streams.get(sid)
            if stream is None:
                if self.client_side:
                    return
                if (self.goaway_sent is not None and sid > self.goaway_sent) or len(
                    self.streams
                ) >= self.settings.max_concurrent_streams:
                    # After our GOAWAY, or over the stream limit, a new stream is refused
                    # without running a handler: the client may retry it.
                    self.reset(sid, ErrorCodes.REFUSED_STREAM)
                    return
                stream = self.streams[sid] = StreamState(sid)
                changes.new_streams.append(sid)
            stream.headers = list(event.headers)  # type: ignore[arg-type]
            if event.stream_ended is not None:
                stream.ended = True
            changes.streams.add(sid)
        elif kind is h2.events.TrailersReceived:
            assert isinstance(event, h2.events.TrailersReceived)
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.trailers = list(event.headers)  # type: ignore[arg-type]
                stream.ended = True
                changes.streams.add(event.stream_id)
        elif kind is h2.events.StreamEnded:
            assert isinstance(event, h2.events.StreamEnded)
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.ended = True
                changes.streams.add(event.stream_id)
        elif kind is h2.events.StreamReset:
            assert isinstance(event, h2.events.StreamReset)
            stream = self.streams.get(event.stream_id)
            if stream is not None and stream.reset_code is None:
                stream.reset_code = int(event.error_code or 0)
                stream.reset_remote = bool(event.remote_reset)
                if stream.reset_remote:
                    changes.reset.append(event.stream_id)
                stream.sent_end = True
                # RST_STREAM(NO_ERROR) after a complete message only tells us to stop
                # sending (RFC 9113 §8.1): what arrived is kept and delivered.
                if not (stream.ended and stream.reset_code == ErrorCodes.NO_ERROR):
                    self._drop_buffered(stream)
                changes.streams.add(event.stream_id)
            changes.window = True
        elif kind is h2.events.WindowUpdated or kind is h2.events.RemoteSettingsChanged:
            changes.window = True
        elif kind is h2.events.InformationalResponseReceived:
            pass  # 1xx heads: the final response follows
        # PING, SETTINGS acks and PRIORITY need nothing from us: h2 answers PINGs itself.

    def _on_data(self, sid: int, data: bytes, flow: int, changes: Changes) -> None:
        stream = self.streams.get(sid)
        if stream is None or stream.reset_code is not None:
            # Nobody will read this: give all the credit back now.
            self._credit(sid if stream is not None else None, flow, conn_only=stream is None)
            return
        chunks = stream.chunks
        if len(data) < _SMALL and chunks and type(chunks[-1][0]) is bytearray:
            # Tiny DATA frames are joined: flow control bounds bytes, not frames, and a
            # million one-byte frames would cost a hundred times their size apart.
            tail, tail_flow = chunks[-1]
            tail += data
            chunks[-1] = (tail, tail_flow + flow)
            if len(tail) >= _SMALL:
                chunks[-1] = (bytes(tail), tail_flow + flow)
        elif len(data) < _SMALL:
            chunks.append((bytearray(data), flow))
        else:
            chunks.append((data, flow))
        stream.buffered += flow
        self._total_buffered += flow
        # Connection credit on receipt while the connection buffers little.
        if self._total_buffered <= self.settings.connection_window_size:
            self._conn_credit(flow)
        else:
            self._conn_unacked += flow
        changes.streams.add(sid)

    def _conn_credit(self, flow: int) -> None:
        """Return connection credit in batches of a quarter window, never per frame.

        Silly window syndrome: crediting each DATA frame at once lets a sender whose
        connection window is down to a few bytes (two streams sharing it) send a
        few-byte frame, get those few bytes back, send another, and so on: with
        64 KiB windows over TLS that was thousands of 1-byte frames and a 20x
        slowdown. No deadlock: a sender blocked on the connection window has all of
        it outstanding here, so either this batch is due, or ``_conn_unacked`` is,
        which ``read`` moves here as soon as the connection buffers little again.
        """
        self._conn_pending += flow
        if self._conn_pending >= max(1, self.settings.connection_window_size // 4):
            give, self._conn_pending = self._conn_pending, 0
            self._credit(None, give, conn_only=True)

    def _credit(self, sid: int | None, flow: int, conn_only: bool) -> None:
        if flow <= 0:
            return
        try:
            self.h2.increment_flow_control_window(flow)
            if not conn_only and sid is not None:
                self.h2.increment_flow_control_window(flow, stream_id=sid)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass  # the stream closed meanwhile; the connection credit above still counts

    # -- the application consuming ------------------------------------------

    def read(self, sid: int) -> bytes | None:
        """Next buffered chunk of ``sid``, returning its stream credit; None if empty."""
        stream = self.streams[sid]
        if not stream.chunks:
            return None
        chunk, flow = stream.chunks.popleft()
        data = bytes(chunk) if isinstance(chunk, bytearray) else chunk
        stream.buffered -= flow
        self._total_buffered -= flow
        if self._conn_unacked and self._total_buffered < self.settings.connection_window_size:
            give, self._conn_unacked = self._conn_unacked, 0
            self._conn_credit(give)
        if not stream.ended and stream.reset_code is None:
            stream.unacked += flow
            # Batch WINDOW_UPDATEs: one per quarter window, not one per frame.
            if stream.unacked >= self.settings.initial_window_size // 4:
                give, stream.unacked = stream.unacked, 0
                try:
                    self.h2.increment_flow_control_window(give, stream_id=sid)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                    pass
        return data

    def _drop_buffered(self, stream: StreamState) -> None:
        dropped = sum(flow for _, flow in stream.chunks)
        stream.chunks.clear()
        stream.buffered = 0
        self._total_buffered -= dropped
        # As in ``read``: the dropped bytes were credited to the connection on receipt,
        # or are counted in ``_conn_unacked``, never both. Crediting ``dropped`` again
        # grew the peer's connection window by every reset, and with it our buffering.
        if self._conn_unacked and self._total_buffered < self.settings.connection_window_size:
            give, self._conn_unacked = self._conn_unacked, 0
            self._conn_credit(give)

    # -- sending --------------------------------------------------------------

    @property
    def can_open_stream(self) -> bool:
        """A new outbound stream fits under the peer's MAX_CONCURRENT_STREAMS."""
        h = self.h2
        return h.open_outbound_streams < h.remote_settings.max_concurrent_streams

    @property
    def accepting_streams(self) -> bool:
        """Neither side has said GOAWAY and the connection has not failed."""
        return (
            self.goaway_received is None
            and self.goaway_sent is None
            and self.failure_reason is None
        )

    def open_stream(self, headers: list[tuple[bytes, bytes]], end_stream: bool) -> int:
        """Client: allocate the next stream id and queue its HEADERS in one step."""
        sid = self.h2.get_next_available_stream_id()
        self.streams[sid] = StreamState(sid, sent_end=end_stream)
        try:
            self.h2.send_headers(sid, headers, end_stream=end_stream)
        except h2.exceptions.ProtocolError as exc:
            del self.streams[sid]
            raise LocalProtocolError(f"cannot send request headers: {exc}") from exc
        return sid

    def send_headers(
        self, sid: int, headers: list[tuple[bytes, bytes]], end_stream: bool = False
    ) -> None:
        self.h2.send_headers(sid, headers, end_stream=end_stream)
        if end_stream:
            self.streams[sid].sent_end = True

    def send_continue(self, sid: int) -> bool:
        """Server: queue ``100 Continue`` on ``sid`` (RFC 9110 §10.1.1). False when
        the client no longer waits for it: its body ended, or a final response began."""
        stream = self.streams.get(sid)
        if stream is None or stream.ended or stream.sent_end or stream.reset_code is not None:
            return False
        try:
            self.h2.send_headers(sid, [(b":status", b"100")])
        except h2.exceptions.ProtocolError:
            return False
        return True

    def send_window(self, sid: int) -> int:
        """Bytes we may send on ``sid`` now (0: wait for WINDOW_UPDATE)."""
        try:
            window = self.h2.local_flow_control_window(sid)
        except h2.exceptions.StreamClosedError:
            return 0
        return min(window, self.h2.max_outbound_frame_size)

    def send_data(self, sid: int, data: bytes, end_stream: bool = False) -> None:
        self.h2.send_data(sid, data, end_stream=end_stream)
        if end_stream:
            self.streams[sid].sent_end = True

    def end_stream(self, sid: int, trailers: list[tuple[bytes, bytes]] | None = None) -> None:
        if trailers:
            self.h2.send_headers(sid, trailers, end_stream=True)
        else:
            self.h2.end_stream(sid)
        self.streams[sid].sent_end = True

    def reset(self, sid: int, code: int = ErrorCodes.CANCEL) -> None:
        """Reset ``sid`` (if h2 still has it open) and drop what it buffered."""
        stream = self.streams.get(sid)
        if stream is not None:
            if stream.reset_code is None:
                stream.reset_code = code
                stream.reset_remote = False
            stream.sent_end = True
            self._drop_buffered(stream)
        try:
            self.h2.reset_stream(sid, code)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            pass  # already closed on both sides: nothing to reset

    def forget(self, sid: int) -> None:
        """The application is done with ``sid``: drop its state, returning any credit."""
        stream = self.streams.pop(sid, None)
        if stream is not None and stream.chunks:
            self._drop_buffered(stream)

    def stream_done(self, sid: int) -> bool:
        """Both directions finished (so a reset is not needed)."""
        stream = self.streams.get(sid)
        return stream is None or (
            stream.sent_end and (stream.ended or stream.reset_code is not None)
        )

    def send_goaway(
        self, last_stream_id: int | None = None, code: int = ErrorCodes.NO_ERROR
    ) -> bytes:
        """A GOAWAY frame that keeps h2 open for streams up to ``last_stream_id``."""
        if last_stream_id is None:
            last_stream_id = self.h2.highest_inbound_stream_id
        self.goaway_sent = last_stream_id
        return GoAwayFrame(0, last_stream_id=last_stream_id, error_code=code).serialize()

    def close(self, code: int = ErrorCodes.NO_ERROR) -> None:
        """Final GOAWAY; the connection is closed after flushing it. What the peer
        sends after it is ignored."""
        self.failure_reason = self.failure_reason or "connection closed"
        self._ended = True
        try:
            self.h2.close_connection(error_code=code, last_stream_id=self._last_stream_id())
        except h2.exceptions.ProtocolError:
            pass

    def reset_error(self, stream: StreamState) -> str:
        who = "the peer" if stream.reset_remote else "hyperpy"
        code = stream.reset_code if stream.reset_code is not None else 0
        return f"stream {stream.stream_id} was reset by {who} ({_error_name(code)})"

    @staticmethod
    def error_name(code: int) -> str:
        return _error_name(code)


_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*={0,2}")


def upgrade_settings_valid(value: bytes) -> bool:
    """Whether an ``HTTP2-Settings`` value (base64url of a SETTINGS payload, RFC 7540
    §3.2.1) can start an upgraded connection.

    Checked before the server answers 101: once it has switched, a bad value could
    only end the connection.
    """
    if not _BASE64URL.fullmatch(value):
        return False
    try:
        trial = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        trial.initiate_upgrade_connection(value)
    except (ValueError, h2.exceptions.ProtocolError):
        return False  # binascii.Error is a ValueError; a bad setting is a ProtocolError
    return True
