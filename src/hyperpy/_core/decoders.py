"""Streaming Content-Encoding decoders with a decompression-bomb guard.

A decoder takes a response body chunk by chunk (``decode``) and is told when
the body ended (``flush``); it never needs the whole body. ``decoder_for``
picks the decoder for a Content-Encoding header value.

The guard: a small compressed body can expand to gigabytes. Each decoder
counts the compressed bytes it consumed and the bytes each decoding step
produced; once the output passes ``min_bomb_bytes`` and the ratio of output
to compressed input passes ``max_ratio``, it raises
``DecompressionBombError``. The check runs after every bounded step, not
after every chunk, so one small chunk cannot allocate gigabytes first:

* gzip and deflate inflate at most ``STEP_SIZE`` bytes per zlib call;
* brotli (1.2 and later) limits its output buffer to about ``STEP_SIZE``;
  older brotli versions cannot, so their input is fed in small slices;
* zstandard's incremental decompressor has no output limit, so its input is
  fed in slices of ``ZSTD_SLICE`` bytes; a zstd block of at most 128 KiB
  costs at least 4 compressed bytes, so one slice yields at most ~2 MiB.

With several codings ("gzip, br") every stage's output is checked against
the compressed bytes received, so neither the final nor an intermediate
stage can blow up.
"""

from __future__ import annotations

import functools
import zlib
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator, Sequence
from typing import Any, Protocol

from .._exceptions import DecodingError, DecompressionBombError, MissingExtra

__all__ = [
    "MAX_CODINGS",
    "STEP_SIZE",
    "ZSTD_MAX_WINDOW",
    "BrotliDecoder",
    "Decoder",
    "DeflateDecoder",
    "GzipDecoder",
    "IdentityDecoder",
    "MultiDecoder",
    "ZstdDecoder",
    "accept_encoding",
    "decoder_for",
]

# The most output one decoding step may produce before the bomb check runs.
STEP_SIZE = 64 * 1024
# zstd input slice: a 4-byte RLE block can expand to 128 KiB, so 64 bytes of
# input produce at most about 2 MiB in one step.
ZSTD_SLICE = 64
# Input slices for brotli: with an output limit they only make the consumed
# count precise; without one (brotli < 1.2) they are all that bounds a step.
_BROTLI_SLICE = 4096
_BROTLI_SLICE_UNLIMITED = 64
# RFC 9659 §3: zstd content coding uses windows of at most 8 MiB, which also
# caps the memory a hostile frame header can make the decoder reserve.
ZSTD_MAX_WINDOW = 8 * 1024 * 1024
# More codings than this in one header is not a real server: refuse it rather
# than stack an attacker-chosen number of decompressors.
MAX_CODINGS = 5

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_GZIP_MAGIC = 0x1F


def _load_brotli() -> Any:
    """The brotli module (``brotli``, else ``brotlicffi``), or MissingExtra."""
    try:
        import brotli  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        try:
            import brotlicffi as brotli  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError:
            raise MissingExtra(
                "the body is brotli-encoded (Content-Encoding: br) but no brotli "
                "library is installed: pip install hyperpy[brotli]"
            ) from None
    return brotli


def _load_zstd() -> Any:
    """The zstandard module, or MissingExtra."""
    try:
        import zstandard
    except ImportError:
        raise MissingExtra(
            "the body is zstd-encoded (Content-Encoding: zstd) but zstandard is "
            "not installed: pip install hyperpy[zstd]"
        ) from None
    return zstandard


def _installed(loader: Any) -> bool:
    try:
        loader()
    except ImportError:
        return False
    return True


@functools.cache
def accept_encoding() -> str:
    """The Accept-Encoding value naming the codings this installation can decode.

    Only installed libraries are advertised, so a server that honours the
    header never sends a coding we cannot decode. The result is cached;
    ``accept_encoding.cache_clear()`` forgets it.
    """
    codings = ["gzip", "deflate"]
    if _installed(_load_brotli):
        codings.append("br")
    if _installed(_load_zstd):
        codings.append("zstd")
    return ", ".join(codings)


class Decoder(ABC):
    """Decodes one response body as it streams in.

    Feed each received chunk to ``decode`` and concatenate what it returns;
    call ``flush`` once when the body ended, which returns the last bytes
    and raises ``DecodingError`` if the encoded stream was cut short.
    """

    @abstractmethod
    def decode(self, data: bytes) -> bytes:
        """Decode the next chunk of the body; may return ``b""`` while buffering."""

    @abstractmethod
    def flush(self) -> bytes:
        """End the body: return the remaining output, or raise if it was truncated."""


class IdentityDecoder(Decoder):
    """The ``identity`` coding: the body passes through unchanged."""

    def decode(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class _Stage(ABC):
    """Undoes one coding in bounded steps; ``consumed`` counts the input it took."""

    coding: str

    def __init__(self) -> None:
        self.consumed = 0

    @abstractmethod
    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield the output for ``data`` piece by piece, each non-empty and bounded."""

    @abstractmethod
    def close(self) -> None:
        """The input ended: raise DecodingError if it ended inside the encoded stream.

        ``feed`` already drained every byte of output its input could give.
        """

    def _invalid(self, exc: BaseException) -> DecodingError:
        return DecodingError(f"invalid {self.coding} body: {exc}")

    def _truncated(self) -> DecodingError:
        return DecodingError(
            f"truncated {self.coding} body: the body ended inside the {self.coding} stream"
        )


class _ZlibStage(_Stage):
    def _inflate(self, z: Any, buf: bytes) -> Generator[bytes, None, bytes]:
        """Inflate ``buf`` in steps of at most STEP_SIZE output bytes.

        Returns the input left after the end of the compressed stream, if any.
        """
        while True:
            try:
                out: bytes = z.decompress(buf, STEP_SIZE)
            except zlib.error as exc:
                raise self._invalid(exc) from None
            rest: bytes = z.unused_data if z.eof else z.unconsumed_tail
            self.consumed += len(buf) - len(rest)
            if out:
                yield out
            if z.eof:
                return rest
            # A full step may leave output pending in zlib even with no input left.
            if not rest and len(out) < STEP_SIZE:
                return b""
            buf = rest


class _GzipStage(_ZlibStage):
    """gzip, including concatenated members (RFC 1952 §2.2)."""

    coding = "gzip"

    def __init__(self) -> None:
        super().__init__()
        self._member: Any = zlib.decompressobj(_GZIP_WBITS)
        self._trailing = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        buf = data
        while buf:
            if self._trailing:
                self.consumed += len(buf)
                return
            if self._member is None:
                # After a complete member, bytes that cannot start another one
                # are padding some servers append: ignore them, as gzip(1) does.
                if buf[0] != _GZIP_MAGIC:
                    self._trailing = True
                    continue
                self._member = zlib.decompressobj(_GZIP_WBITS)
            buf = yield from self._inflate(self._member, buf)
            if self._member.eof:
                self._member = None

    def close(self) -> None:
        # An empty body (no byte at all) is no body, not a truncated one.
        if self._member is not None and self.consumed:
            raise self._truncated()


class _DeflateStage(_ZlibStage):
    """deflate: zlib-wrapped (RFC 1950) as specified, or raw (RFC 1951) as sent by some servers."""

    coding = "deflate"

    def __init__(self) -> None:
        super().__init__()
        self._z: Any = None
        self._head = b""

    @staticmethod
    def _is_zlib_header(cmf: int, flg: int) -> bool:
        # CM 8 (deflate), CINFO <= 7 (window <= 32 KiB), and the FCHECK bits.
        return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        buf = data
        if self._z is None:
            buf = self._head + buf
            # The held byte was counted when it arrived; inflating counts it again.
            self.consumed -= len(self._head)
            if len(buf) < 2:
                self._head = buf
                self.consumed += len(buf)
                return
            self._head = b""
            wbits = zlib.MAX_WBITS if self._is_zlib_header(buf[0], buf[1]) else -zlib.MAX_WBITS
            self._z = zlib.decompressobj(wbits)
        if not self._z.eof:
            buf = yield from self._inflate(self._z, buf)
        # Bytes after the end of the stream are ignored, like zlib's own decompress().
        self.consumed += len(buf)

    def close(self) -> None:
        if self._head or (self._z is not None and not self._z.eof):
            raise self._truncated()


class _BrotliStage(_Stage):
    coding = "br"

    def __init__(self) -> None:
        super().__init__()
        module = _load_brotli()
        self._error: type[BaseException] = module.error
        self._dec: Any = module.Decompressor()
        # brotli >= 1.2 can cap the output of one call; older versions cannot.
        self._limited = hasattr(self._dec, "can_accept_more_data")
        self._slice = _BROTLI_SLICE if self._limited else _BROTLI_SLICE_UNLIMITED

    def _process(self, data: bytes) -> bytes:
        try:
            if self._limited:
                out: bytes = self._dec.process(data, output_buffer_limit=STEP_SIZE)
            else:
                out = self._dec.process(data)
        except self._error as exc:
            raise self._invalid(exc) from None
        return out

    def feed(self, data: bytes) -> Iterator[bytes]:
        for start in range(0, len(data), self._slice):
            piece = data[start : start + self._slice]
            out = self._process(piece)
            self.consumed += len(piece)
            if not self._limited:
                if out:
                    yield out
                continue
            # The decoder may hold more output even once it accepts input again:
            # drain it, so that a chunk's output is not held back until the next one.
            while True:
                if out:
                    yield out
                elif self._dec.can_accept_more_data():
                    break
                out = self._process(b"")
                if not out and not self._dec.can_accept_more_data():
                    break  # no progress is possible without input: never spin

    def close(self) -> None:
        if self.consumed and not self._dec.is_finished():
            raise self._truncated()


class _ZstdStage(_Stage):
    """zstd, including several frames one after another (RFC 8878 §3.1)."""

    coding = "zstd"

    def __init__(self) -> None:
        super().__init__()
        module = _load_zstd()
        self._error: type[BaseException] = module.ZstdError
        self._dctx: Any = module.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._frame: Any = None
        self._frame_started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(view), ZSTD_SLICE):
            buf: bytes | memoryview = view[start : start + ZSTD_SLICE]
            while buf:
                if self._frame is None:
                    # One decompressobj per frame: its ``eof`` tells whether
                    # the body ended between frames or inside one.
                    self._frame = self._dctx.decompressobj(write_size=STEP_SIZE)
                    self._frame_started = False
                try:
                    out: bytes = self._frame.decompress(buf)
                except self._error as exc:
                    raise self._invalid(exc) from None
                self._frame_started = True
                rest: bytes = self._frame.unused_data if self._frame.eof else b""
                self.consumed += len(buf) - len(rest)
                if self._frame.eof:
                    self._frame = None
                if out:
                    yield out
                buf = rest

    def close(self) -> None:
        if self._frame is not None and self._frame_started:
            raise self._truncated()


_STAGES: dict[str, type[_Stage]] = {
    "gzip": _GzipStage,
    "x-gzip": _GzipStage,  # RFC 9110 §8.4.1.3
    "deflate": _DeflateStage,
    "br": _BrotliStage,
    "zstd": _ZstdStage,
}


class _GuardedDecoder(Decoder):
    """Runs stages in decoding order and checks every stage's output ratio."""

    def __init__(
        self, stages: Sequence[_Stage], *, max_ratio: float | None, min_bomb_bytes: int
    ) -> None:
        if max_ratio is not None and not max_ratio > 0:
            raise ValueError(f"max_ratio must be positive or None, not {max_ratio!r}")
        if min_bomb_bytes < 0:
            raise ValueError(f"min_bomb_bytes must be >= 0, not {min_bomb_bytes!r}")
        self._stages = list(stages)
        self._produced = [0] * len(self._stages)
        self._max_ratio = max_ratio
        self._min_bomb_bytes = min_bomb_bytes
        self._flushed = False

    def decode(self, data: bytes) -> bytes:
        if self._flushed:
            raise DecodingError("decode() called after flush()")
        if not data:
            return b""
        out: list[bytes] = []
        self._push(0, data, out)
        return b"".join(out)

    def flush(self) -> bytes:
        if self._flushed:
            return b""
        self._flushed = True
        # Every stage hands on its output as soon as its input allows, so nothing
        # is left to emit: only whether each stream was complete is still open.
        for stage in self._stages:
            stage.close()
        return b""

    def _push(self, index: int, data: bytes, out: list[bytes]) -> None:
        for piece in self._stages[index].feed(data):
            self._emit(index, piece, out)

    def _emit(self, index: int, piece: bytes, out: list[bytes]) -> None:
        self._produced[index] += len(piece)
        self._check(index)
        if index + 1 < len(self._stages):
            self._push(index + 1, piece, out)
        else:
            out.append(piece)

    def _check(self, index: int) -> None:
        produced = self._produced[index]
        if self._max_ratio is None or produced <= self._min_bomb_bytes:
            return
        # Always against the bytes received, so stacked codings cannot multiply ratios.
        compressed = max(self._stages[0].consumed, 1)
        ratio = produced / compressed
        if ratio > self._max_ratio:
            raise DecompressionBombError(
                f"{self._stages[index].coding} body expanded {ratio:.0f}:1 "
                f"({produced} bytes from {compressed} compressed bytes), "
                f"beyond the limit of {self._max_ratio:g}:1"
            )


class GzipDecoder(_GuardedDecoder):
    """``gzip`` (and ``x-gzip``): concatenated members are decoded one after another."""

    def __init__(self, *, max_ratio: float | None = 100.0, min_bomb_bytes: int = 1 << 20) -> None:
        super().__init__([_GzipStage()], max_ratio=max_ratio, min_bomb_bytes=min_bomb_bytes)


class DeflateDecoder(_GuardedDecoder):
    """``deflate``: zlib-wrapped when the first two bytes are a zlib header, else raw."""

    def __init__(self, *, max_ratio: float | None = 100.0, min_bomb_bytes: int = 1 << 20) -> None:
        super().__init__([_DeflateStage()], max_ratio=max_ratio, min_bomb_bytes=min_bomb_bytes)


class BrotliDecoder(_GuardedDecoder):
    """``br``; raises MissingExtra if neither brotli nor brotlicffi is installed."""

    def __init__(self, *, max_ratio: float | None = 100.0, min_bomb_bytes: int = 1 << 20) -> None:
        super().__init__([_BrotliStage()], max_ratio=max_ratio, min_bomb_bytes=min_bomb_bytes)


class ZstdDecoder(_GuardedDecoder):
    """``zstd``, windows up to 8 MiB; raises MissingExtra if zstandard is not installed."""

    def __init__(self, *, max_ratio: float | None = 100.0, min_bomb_bytes: int = 1 << 20) -> None:
        super().__init__([_ZstdStage()], max_ratio=max_ratio, min_bomb_bytes=min_bomb_bytes)


class MultiDecoder(_GuardedDecoder):
    """Several codings, given in the order they were applied (as in the header).

    They are undone last first: ``MultiDecoder(["gzip", "br"])`` decodes br,
    then gzip. The bomb guard covers every stage.
    """

    def __init__(
        self,
        codings: Sequence[str],
        *,
        max_ratio: float | None = 100.0,
        min_bomb_bytes: int = 1 << 20,
    ) -> None:
        stages: list[_Stage] = []
        for coding in reversed(codings):
            try:
                stage_type = _STAGES[coding.lower()]
            except KeyError:
                raise ValueError(f"unsupported content coding {coding!r}") from None
            stages.append(stage_type())
        if not stages:
            raise ValueError("MultiDecoder needs at least one coding")
        super().__init__(stages, max_ratio=max_ratio, min_bomb_bytes=min_bomb_bytes)


class _DecoderFactory(Protocol):
    def __call__(self, *, max_ratio: float | None, min_bomb_bytes: int) -> Decoder: ...


_SINGLE: dict[str, _DecoderFactory] = {
    "gzip": GzipDecoder,
    "x-gzip": GzipDecoder,
    "deflate": DeflateDecoder,
    "br": BrotliDecoder,
    "zstd": ZstdDecoder,
}


def decoder_for(
    content_encoding: str | None,
    *,
    max_ratio: float | None = 100.0,
    min_bomb_bytes: int = 1 << 20,
) -> Decoder | None:
    """The decoder for a Content-Encoding header value, or None to keep the body as is.

    The value lists codings in the order they were applied (case-insensitive,
    comma-separated, ``identity`` and empty items skipped). None is returned
    for no coding, and for any unknown coding: like browsers, the body is then
    handed over undecoded. ``br`` or ``zstd`` without its library raises
    ``MissingExtra``; more than ``MAX_CODINGS`` codings raise ``DecodingError``.
    ``max_ratio=None`` disables the decompression-bomb check.
    """
    if not content_encoding:
        return None
    codings = [
        token
        for token in (item.strip().lower() for item in content_encoding.split(","))
        if token and token != "identity"
    ]
    if not codings or any(coding not in _STAGES for coding in codings):
        return None
    if len(codings) > MAX_CODINGS:
        raise DecodingError(
            f"Content-Encoding lists {len(codings)} codings; at most {MAX_CODINGS} are decoded"
        )
    if len(codings) == 1:
        return _SINGLE[codings[0]](max_ratio=max_ratio, min_bomb_bytes=min_bomb_bytes)
    return MultiDecoder(codings, max_ratio=max_ratio, min_bomb_bytes=min_bomb_bytes)
