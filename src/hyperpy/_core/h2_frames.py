"""The HTTP/2 frame guard: every frame the peer sends passes here before the
parser engine sees it.

Theory of operation: the guard reads the 9-byte header of each frame as the
bytes arrive (a header split across reads is held back until whole) and passes
the frames themselves through uncopied. Two jobs are done on those headers,
whatever engine parses the payloads:

- GOAWAY frames are cut out and handed to hyperpy whole (see ``_core/h2.py``
  for why h2 must not see them);
- hyperpy's abuse limits: rate budgets for stream resets (rapid reset),
  control frames (PING, SETTINGS, PRIORITY) and empty DATA frames; a cap on
  the size of one header block (the CONTINUATION flood) and of any frame
  (refused at its header, not once buffered); and the framing rules h2 leaves
  loose or reports with the wrong code (the first frame must be SETTINGS, a
  SETTINGS acknowledgement is empty, a GOAWAY is on stream 0 and 8 bytes or more). A breach raises
  ``ProtocolViolation`` with the HTTP/2 error code to send in our GOAWAY.
"""

from __future__ import annotations

from h2.errors import ErrorCodes

from .._config import H2Settings
from .._exceptions import RemoteProtocolError
from .budget import TokenBucket

# Frame types and flags (RFC 9113 §6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE = 0x0, 0x1, 0x2, 0x3, 0x4, 0x5
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x6, 0x7, 0x8, 0x9
END_STREAM = ACK = 0x1
END_HEADERS = 0x4

_MAX_GOAWAY_PAYLOAD = 64 * 1024
_DEFAULT_MAX_FRAME = 16 * 1024


class ProtocolViolation(RemoteProtocolError):
    """The peer broke HTTP/2 or an abuse limit: the connection ends with GOAWAY(code)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class FrameGuard:
    """Scans the peer's frames (see the module doc); one per connection."""

    __slots__ = (
        "_block",
        "_control",
        "_empty_data",
        "_first",
        "_goaway_buf",
        "_goaway_left",
        "_header",
        "_max_block",
        "_max_frame",
        "_preface_left",
        "_resets",
        "_skip",
    )

    def __init__(self, client_side: bool, settings: H2Settings, preface: int) -> None:
        # Bytes of the client preface still to pass (the engine checks them).
        self._preface_left = 0 if client_side else preface
        self._skip = 0  # payload bytes left of the frame being passed through
        self._header = b""  # a frame header split across reads
        self._goaway_left = 0  # payload bytes left of a GOAWAY being collected
        self._goaway_buf = b""
        self._first = True  # the peer's first frame is still to come
        self._block: int | None = None  # bytes of a header block awaiting END_HEADERS
        self._max_block = settings.max_header_block
        # The peer may use 16 KiB frames before it has seen our SETTINGS (RFC 9113 §4.2).
        self._max_frame = max(settings.max_frame_size, _DEFAULT_MAX_FRAME)
        self._resets = TokenBucket(settings.remote_reset_burst, settings.remote_reset_rate)
        self._control = TokenBucket(settings.control_frame_burst, settings.control_frame_rate)
        self._empty_data = TokenBucket(settings.empty_data_burst, settings.empty_data_rate)

    def split(self, data: bytes, now: float) -> list[tuple[bytes, bool]]:
        """Cut ``data`` into runs for the engine (False) and whole GOAWAY payloads
        (True). Without a GOAWAY in it, the buffer passes through uncopied."""
        out: list[tuple[bytes, bool]] = []
        pieces: list[bytes | memoryview] = []
        view = memoryview(data)
        pos, n = 0, len(view)
        run = 0  # start of the current pass-through slice of ``view``
        if self._preface_left:
            pos = min(self._preface_left, n)
            self._preface_left -= pos
        while pos < n:
            if self._skip:
                take = min(self._skip, n - pos)
                self._skip -= take
                pos += take
                continue
            if self._goaway_left:
                take = min(self._goaway_left, n - pos)
                self._goaway_buf += bytes(view[pos : pos + take])
                self._goaway_left -= take
                pos += take
                run = pos
                if not self._goaway_left:
                    _flush_run(out, pieces)
                    out.append((self._goaway_buf, True))
                    self._goaway_buf = b""
                continue
            if pos > run:
                pieces.append(view[run:pos])
            piece = bytes(view[pos : pos + 9 - len(self._header)])
            self._header += piece
            pos += len(piece)
            run = pos
            if len(self._header) < 9:
                break  # held back until the rest of the header arrives
            header, self._header = self._header, b""
            length = int.from_bytes(header[:3], "big")
            kind = header[3]
            self._check(kind, header[4], length, now)
            if kind == GOAWAY:
                self._check_goaway(header, length)
                self._goaway_left = length
                if not length:
                    _flush_run(out, pieces)
                    out.append((b"", True))
            else:
                pieces.append(header)
                self._skip = length
        if run < n and not self._goaway_left and not self._header:
            pieces.append(view[run:n])
        whole = len(pieces) == 1 and isinstance(pieces[0], memoryview) and len(pieces[0]) == n
        if whole and not out:
            out.append((data, False))  # the common case: no copy
        else:
            _flush_run(out, pieces)
        return out

    def _check(self, kind: int, flags: int, length: int, now: float) -> None:
        """hyperpy's rules for one frame header (raises ProtocolViolation)."""
        if length > self._max_frame:
            # Refused at its header: the engine would buffer a whole (16 MiB) frame
            # before it looks at its length.
            raise ProtocolViolation(
                ErrorCodes.FRAME_SIZE_ERROR,
                f"a frame of {length} bytes (at most {self._max_frame})",
            )
        if self._first:
            self._first = False
            if kind != SETTINGS or flags & ACK:
                # RFC 9113 §3.4: the preface is followed by a SETTINGS frame.
                raise ProtocolViolation(
                    ErrorCodes.PROTOCOL_ERROR, "the first frame after the preface is not SETTINGS"
                )
        if self._block is not None:
            if kind != CONTINUATION:
                # The engine reports this too; checked here so the size count stays
                # right whichever frame comes.
                raise ProtocolViolation(
                    ErrorCodes.PROTOCOL_ERROR, "a header block was interrupted by another frame"
                )
            self._block += length
            self._check_block()
            if flags & END_HEADERS:
                self._block = None
            return
        if kind == DATA:
            if not length and not flags & END_STREAM and not self._empty_data.take(now):
                raise ProtocolViolation(
                    ErrorCodes.ENHANCE_YOUR_CALM, "too many empty DATA frames from the peer"
                )
        elif kind in (HEADERS, PUSH_PROMISE):
            if not flags & END_HEADERS:
                self._block = length
            elif length > self._max_block:
                self._block = length
                self._check_block()
        elif kind == RST_STREAM:
            if not self._resets.take(now):
                raise ProtocolViolation(
                    ErrorCodes.ENHANCE_YOUR_CALM, "too many stream resets from the peer"
                )
        elif kind == SETTINGS:
            if flags & ACK and length:
                raise ProtocolViolation(
                    ErrorCodes.FRAME_SIZE_ERROR, "a SETTINGS acknowledgement with a payload"
                )
            self._control_frame(now)
        elif kind in (PING, PRIORITY):
            self._control_frame(now)

    @staticmethod
    def _check_goaway(header: bytes, length: int) -> None:
        if int.from_bytes(header[5:9], "big") & 0x7FFFFFFF:
            raise ProtocolViolation(ErrorCodes.PROTOCOL_ERROR, "a GOAWAY frame on a stream")
        if length < 8:
            raise ProtocolViolation(ErrorCodes.FRAME_SIZE_ERROR, "a GOAWAY frame too short")
        if length > _MAX_GOAWAY_PAYLOAD:
            raise ProtocolViolation(ErrorCodes.FRAME_SIZE_ERROR, "a GOAWAY frame too large")

    def _check_block(self) -> None:
        assert self._block is not None
        if self._block > self._max_block:
            raise ProtocolViolation(
                ErrorCodes.ENHANCE_YOUR_CALM,
                f"a header block of over {self._max_block} bytes (CONTINUATION flood)",
            )

    def _control_frame(self, now: float) -> None:
        if not self._control.take(now):
            raise ProtocolViolation(
                ErrorCodes.ENHANCE_YOUR_CALM, "too many PING, SETTINGS or PRIORITY frames"
            )


def _flush_run(out: list[tuple[bytes, bool]], pieces: list[bytes | memoryview]) -> None:
    if pieces:
        out.append((b"".join(pieces), False))
        pieces.clear()


def count_frames(data: bytes, kind: int) -> int:
    """How many frames of type ``kind`` the whole frames in ``data`` hold (our own
    output: always whole frames)."""
    count = pos = 0
    end = len(data)
    while pos + 9 <= end:
        if data[pos + 3] == kind:
            count += 1
        pos += 9 + int.from_bytes(data[pos : pos + 3], "big")
    return count
