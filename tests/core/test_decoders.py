"""Content-Encoding decoders (``hyperpy._core.decoders``): streaming, limits, errors. No IO."""

from __future__ import annotations

import gzip
import os
import sys
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import brotli  # type: ignore[import-untyped]
import pytest
import zstandard

from hyperpy._core.decoders import (
    MAX_CODINGS,
    BrotliDecoder,
    Decoder,
    DeflateDecoder,
    GzipDecoder,
    IdentityDecoder,
    MultiDecoder,
    ZstdDecoder,
    accept_encoding,
    decoder_for,
)
from hyperpy._exceptions import DecodingError, DecompressionBombError, MissingExtra

# Text-like (compressible) and random (incompressible) content.
DATA = b"".join(b"line %d of a streamed body\n" % i for i in range(1500)) + os.urandom(3000)
MiB = 1 << 20


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstd,
}


def decode_all(decoder: Decoder, body: bytes, size: int) -> bytes:
    out = [decoder.decode(body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(out) + decoder.flush()


def make(coding: str, **limits: Any) -> Decoder:
    decoder = decoder_for(coding, **limits)
    assert decoder is not None
    return decoder


@pytest.fixture(autouse=True)
def fresh_accept_encoding() -> Iterator[None]:
    accept_encoding.cache_clear()
    yield
    accept_encoding.cache_clear()


# --- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 65536])
@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_round_trip_in_chunks(coding: str, size: int) -> None:
    assert decode_all(make(coding), ENCODERS[coding](DATA), size) == DATA


@pytest.mark.parametrize("size", [1, 7, 65536])
def test_raw_deflate(size: int) -> None:
    assert decode_all(make("deflate"), raw_deflate(DATA), size) == DATA


@pytest.mark.parametrize("body", [zlib.compress(b""), raw_deflate(b""), raw_deflate(b"x")])
def test_tiny_deflate_streams(body: bytes) -> None:
    expected = b"x" if len(body) == 3 else b""
    assert decode_all(make("deflate"), body, 1) == expected


@pytest.mark.parametrize("size", [1, 7, 65536])
def test_concatenated_gzip_members(size: int) -> None:
    body = gzip.compress(b"first member|") + gzip.compress(b"") + gzip.compress(DATA)
    assert decode_all(make("gzip"), body, size) == b"first member|" + DATA


def test_padding_after_a_gzip_member_is_ignored() -> None:
    assert decode_all(make("gzip"), gzip.compress(DATA) + b"\x00" * 10, 7) == DATA


def test_bytes_after_a_deflate_stream_are_ignored() -> None:
    for size in (1, 7):
        assert decode_all(make("deflate"), zlib.compress(DATA) + b"junk", size) == DATA


@pytest.mark.parametrize("size", [1, 7, 65536])
def test_zstd_several_frames_and_a_skippable_frame(size: int) -> None:
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"meta"
    body = zstd(b"one|") + skippable + zstd(b"") + zstd(DATA)
    assert decode_all(make("zstd"), body, size) == b"one|" + DATA


@pytest.mark.parametrize("size", [1, 7, 65536])
def test_two_codings_are_undone_in_reverse(size: int) -> None:
    body = brotli.compress(gzip.compress(DATA))  # Content-Encoding: gzip, br
    decoder = make("gzip, br")
    assert isinstance(decoder, MultiDecoder)
    assert decode_all(decoder, body, size) == DATA


def test_three_codings() -> None:
    body = gzip.compress(zstd(zlib.compress(DATA)))
    assert decode_all(make("deflate, zstd, gzip"), body, 7) == DATA


def test_empty_bodies_are_not_truncated() -> None:
    for coding in ENCODERS:
        decoder = make(coding)
        assert decoder.decode(b"") == b""
        assert decoder.flush() == b""


def test_identity_decoder() -> None:
    decoder = IdentityDecoder()
    assert decoder.decode(b"abc") == b"abc"
    assert decoder.flush() == b""


def test_flush_twice_and_decode_after_flush() -> None:
    decoder = make("gzip")
    assert decoder.decode(gzip.compress(b"x")) == b"x"
    assert decoder.flush() == b""
    assert decoder.flush() == b""
    with pytest.raises(DecodingError):
        decoder.decode(b"more")


# --- choosing a decoder ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("identity", None),
        (" , identity ,", None),
        ("gzip", GzipDecoder),
        (" GZip ", GzipDecoder),
        ("x-gzip", GzipDecoder),
        ("deflate", DeflateDecoder),
        ("BR", BrotliDecoder),
        ("zstd", ZstdDecoder),
        ("identity, gzip", GzipDecoder),
        ("gzip,,br", MultiDecoder),
        ("compress", None),
        ("gzip, unknown", None),
        ("unknown, gzip", None),
    ],
)
def test_decoder_for(header: str | None, expected: type[Decoder] | None) -> None:
    decoder = decoder_for(header)
    if expected is None:
        assert decoder is None
    else:
        assert type(decoder) is expected


def test_too_many_codings() -> None:
    assert decoder_for(", ".join(["gzip"] * MAX_CODINGS)) is not None
    with pytest.raises(DecodingError, match="codings"):
        decoder_for(", ".join(["gzip"] * (MAX_CODINGS + 1)))


def test_invalid_limits() -> None:
    with pytest.raises(ValueError):
        GzipDecoder(max_ratio=0)
    with pytest.raises(ValueError):
        GzipDecoder(min_bomb_bytes=-1)
    with pytest.raises(ValueError):
        MultiDecoder([])
    with pytest.raises(ValueError):
        MultiDecoder(["gzip", "compress"])


# --- corrupt and truncated input -------------------------------------------------------


def flip(body: bytes, index: int) -> bytes:
    return body[:index] + bytes([body[index] ^ 0xFF]) + body[index + 1 :]


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", b"this is not gzip at all"),
        ("gzip", flip(gzip.compress(DATA), -6)),  # the CRC-32 no longer matches
        ("gzip", gzip.compress(DATA) + b"\x1f\x00garbage"),  # a second member that is not one
        ("deflate", b"\xff\xff\xff\xff"),  # raw deflate with the reserved block type
        ("deflate", flip(zlib.compress(DATA), -2)),  # the Adler-32 no longer matches
        ("br", b"this is not brotli"),
        ("br", brotli.compress(DATA) + b"trailing"),
        ("zstd", b"this is not zstd!"),
        ("zstd", zstd(DATA) + b"trailing garbage"),
        ("gzip, br", brotli.compress(b"not gzip inside")),
    ],
)
def test_corrupt_input_raises_decoding_error(coding: str, body: bytes) -> None:
    decoder = make(coding)
    with pytest.raises(DecodingError) as info:
        decode_all(decoder, body, 7)
    assert not isinstance(info.value, DecompressionBombError)
    assert "gzip" in str(info.value) if coding == "gzip, br" else coding in str(info.value)
    # The library's own error type does not leak, not even as the context.
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", gzip.compress(DATA)[:-4]),  # the ISIZE trailer is missing
        ("gzip", gzip.compress(DATA)[:5]),  # inside the header
        ("gzip", gzip.compress(b"x") + b"\x1f"),  # a second member that never came
        ("deflate", zlib.compress(DATA)[:-1]),
        ("deflate", raw_deflate(DATA)[:-10]),
        ("deflate", b"\x78"),  # a lone first byte
        ("br", brotli.compress(DATA)[:-3]),
        ("zstd", zstd(DATA)[:-3]),
        ("zstd", zstd(b"x") + zstd(DATA)[:10]),
    ],
)
def test_truncated_body_raises_on_flush(coding: str, body: bytes) -> None:
    decoder = make(coding)
    for i in range(0, len(body), 7):
        decoder.decode(body[i : i + 7])
    with pytest.raises(DecodingError, match=f"truncated {coding} body"):
        decoder.flush()


def test_zstd_window_above_8_mib_is_refused() -> None:
    params = zstandard.ZstdCompressionParameters(window_log=24)
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
    body = compressor.compress(bytes(65536)) + compressor.flush()
    assert zstandard.get_frame_parameters(body).window_size == 16 * MiB
    with pytest.raises(DecodingError, match="zstd"):
        decode_all(make("zstd"), body, 65536)


# --- decompression bombs ---------------------------------------------------------------


def compressed_zeros(coding: str, total: int = 200 * MiB) -> Iterator[bytes]:
    """``total`` zero bytes, compressed lazily a MiB at a time (only what is consumed is made)."""
    block = bytes(MiB)
    if coding in ("gzip", "deflate"):
        z = zlib.compressobj(1, wbits=31 if coding == "gzip" else zlib.MAX_WBITS)
        for _ in range(total // MiB):
            yield z.compress(block)
        yield z.flush()
    elif coding == "br":
        b = brotli.Compressor(quality=1)
        for _ in range(total // MiB):
            yield b.process(block) + b.flush()
        yield b.finish()
    else:
        c = zstandard.ZstdCompressor(level=1).compressobj()
        for _ in range(total // MiB):
            yield c.compress(block) + c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        yield c.flush()


def wire(pieces: Iterator[bytes], size: int = 16384) -> Iterator[bytes]:
    """The compressed stream re-cut into network-sized chunks."""
    buffer = b""
    for piece in pieces:
        buffer += piece
        while len(buffer) >= size:
            yield buffer[:size]
            buffer = buffer[size:]
    if buffer:
        yield buffer


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_zip_bomb_is_stopped_early(coding: str) -> None:
    decoder = make(coding)
    chunks = wire(compressed_zeros(coding))
    block = bytes(MiB)  # noqa: F841 - allocated before tracing, like the compressors' input
    returned = 0
    tracemalloc.start()
    try:
        with pytest.raises(DecompressionBombError) as info:
            for chunk in chunks:
                returned += len(decoder.decode(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert returned < 4 * MiB
    # Bounded steps: the decoder never held more than a few MiB at once.
    assert peak < 8 * MiB
    assert coding in str(info.value)
    assert "limit of 100:1" in str(info.value)
    assert isinstance(info.value, DecodingError)


def test_bomb_through_two_codings() -> None:
    inner = b"".join(compressed_zeros("gzip", 20 * MiB))  # ~1000:1
    body = gzip.compress(inner)  # Content-Encoding: gzip, gzip; the ratios multiply
    decoder = make("gzip, gzip", max_ratio=500)
    with pytest.raises(DecompressionBombError, match="gzip body expanded"):
        decode_all(decoder, body, 16384)


def test_intermediate_stage_is_checked_too() -> None:
    # The outer br layer expands a lot into empty stored deflate blocks that produce nothing.
    empty_blocks = b"\x00\x00\x00\xff\xff" * (2 * MiB // 5)
    body = brotli.compress(zlib.compressobj(wbits=-15).flush(zlib.Z_SYNC_FLUSH) + empty_blocks)
    with pytest.raises(DecompressionBombError, match="br body expanded"):
        decode_all(make("deflate, br"), body, 16384)


def test_small_highly_compressible_body_passes() -> None:
    body = gzip.compress(bytes(500_000))
    assert len(body) * 100 < 500_000  # far beyond the ratio, but under min_bomb_bytes
    for coding, encoded in [
        ("gzip", body),
        ("br", brotli.compress(bytes(500_000))),
        ("zstd", zstd(bytes(500_000))),
    ]:
        assert decode_all(make(coding), encoded, 7) == bytes(500_000)


def test_limits_are_configurable() -> None:
    body = gzip.compress(bytes(3 * MiB))
    assert decode_all(make("gzip", max_ratio=None), body, 16384) == bytes(3 * MiB)
    assert decode_all(make("gzip", min_bomb_bytes=4 * MiB), body, 16384) == bytes(3 * MiB)
    with pytest.raises(DecompressionBombError):
        decode_all(make("gzip", min_bomb_bytes=0), gzip.compress(bytes(100_000)), 16384)


def test_ordinary_compression_ratios_pass() -> None:
    body = b"".join(b'{"id": %d, "name": "item", "tags": ["a", "b"]}\n' % i for i in range(40_000))
    assert len(body) > MiB  # past min_bomb_bytes, so the ratio is checked

    def quick_br(data: bytes) -> bytes:
        result: bytes = brotli.compress(data, quality=5)
        return result

    for coding, encoder in {**ENCODERS, "br": quick_br}.items():
        assert decode_all(make(coding), encoder(body), 16384) == body


# --- optional libraries ----------------------------------------------------------------


def test_accept_encoding_lists_installed_codings() -> None:
    assert accept_encoding() == "gzip, deflate, br, zstd"
    assert accept_encoding() is accept_encoding()  # cached


def hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    # A None entry in sys.modules makes ``import name`` raise ImportError.
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_brotli(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "brotli", "brotlicffi")
    assert accept_encoding() == "gzip, deflate, zstd"
    with pytest.raises(MissingExtra, match=r"pip install hyperpy\[brotli\]") as info:
        decoder_for("br")
    assert isinstance(info.value, ImportError)
    with pytest.raises(MissingExtra):
        decoder_for("gzip, br")
    assert decoder_for("br, unknown") is None  # not decodable anyway: no error


def test_missing_zstandard(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "zstandard")
    assert accept_encoding() == "gzip, deflate, br"
    with pytest.raises(MissingExtra, match=r"pip install hyperpy\[zstd\]"):
        decoder_for("zstd")


def test_brotlicffi_is_used_when_brotli_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "brotli")
    monkeypatch.setitem(sys.modules, "brotlicffi", brotli)  # the same API
    assert "br" in accept_encoding()
    assert decode_all(make("br"), brotli.compress(DATA), 7) == DATA


class _OldDecompressor:
    """brotli before 1.2: no output limit, no can_accept_more_data."""

    def __init__(self) -> None:
        self._inner = brotli.Decompressor()

    def process(self, data: bytes) -> bytes:
        result: bytes = self._inner.process(data)
        return result

    def is_finished(self) -> bool:
        finished: bool = self._inner.is_finished()
        return finished


def test_brotli_without_output_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    old = ModuleType("brotli")
    old.Decompressor = _OldDecompressor  # type: ignore[attr-defined]
    old.error = brotli.error  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "brotli", old)
    assert decode_all(make("br"), brotli.compress(DATA), 7) == DATA
    with pytest.raises(DecompressionBombError):
        decode_all(make("br"), b"".join(compressed_zeros("br", 20 * MiB)), 16384)
    with pytest.raises(DecodingError, match="truncated br body"):
        decode_all(make("br"), brotli.compress(DATA)[:-3], 7)


class _StalledDecompressor:
    """A decoder that neither produces output nor accepts input (a misbehaving library)."""

    def process(self, data: bytes, output_buffer_limit: int = 0) -> bytes:
        return b""

    def can_accept_more_data(self) -> bool:
        return False

    def is_finished(self) -> bool:
        return False


def test_brotli_stall_does_not_spin(monkeypatch: pytest.MonkeyPatch) -> None:
    stalled = ModuleType("brotli")
    stalled.Decompressor = _StalledDecompressor  # type: ignore[attr-defined]
    stalled.error = brotli.error  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "brotli", stalled)
    decoder = make("br")
    assert decoder.decode(b"abc") == b""
    with pytest.raises(DecodingError, match="truncated br body"):
        decoder.flush()
