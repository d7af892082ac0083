"""Form bodies (``hyperpy._core.multipart``), parsed back by python-multipart: no IO but files."""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from hyperpy._core.multipart import READ_SIZE, MultipartBody, encode_form
from hyperpy._exceptions import LocalProtocolError, StreamConsumed

try:
    from python_multipart.multipart import MultipartParser, parse_options_header
except ImportError:  # python-multipart before 0.0.13 named its package ``multipart``
    from multipart.multipart import (  # type: ignore[no-redef,import-untyped]
        MultipartParser,
        parse_options_header,
    )


@dataclass
class Part:
    raw_headers: dict[str, bytes] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)

    @property
    def disposition(self) -> dict[str, str]:
        value, params = parse_options_header(self.raw_headers["content-disposition"])
        assert value == b"form-data"
        return {k.decode(): v.decode("utf-8") for k, v in params.items()}

    @property
    def headers(self) -> dict[str, str]:
        return {key: value.decode("utf-8") for key, value in self.raw_headers.items()}

    @property
    def name(self) -> str:
        return self.disposition["name"]

    @property
    def filename(self) -> str | None:
        return self.disposition.get("filename")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


def parse(body: MultipartBody) -> list[Part]:
    """Stream the body through python-multipart and check the byte count against content_length."""
    match = re.fullmatch(r'multipart/form-data; boundary="?([^"]+)"?', body.content_type)
    assert match is not None
    parts: list[Part] = []
    header: list[bytes] = [b"", b""]
    ended: list[bool] = []

    def on_part_begin() -> None:
        parts.append(Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        parts[-1].raw_headers[header[0].decode().lower()] = header[1]
        header[:] = [b"", b""]

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data += data[start:end]

    parser = MultipartParser(
        match.group(1).encode(),
        callbacks={
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_end": lambda: ended.append(True),
        },
    )
    total = 0
    for chunk in body:
        assert isinstance(chunk, bytes)
        total += len(chunk)
        parser.write(chunk)
    parser.finalize()
    assert ended == [True]
    if body.content_length is not None:
        assert body.content_length == total
    return parts


class NonSeekable(io.RawIOBase):
    """A pipe-like binary stream: readable, no tell, no seek, no fileno."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.reads: list[int] = []

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        return self._data.read(size)


def test_fields_and_files_round_trip() -> None:
    body = MultipartBody(
        data={"a": "1", "b": ["x", "y"], "flag": True, "none": None, "num": 2.5},
        files={
            "f1": ("hello.txt", b"hello world"),
            "f2": ("data.bin", io.BytesIO(b"\x00\x01\x02"), "application/x-custom"),
            "f3": (None, "text content"),
            "f4": ("h.json", b"{}", None, {"X-Extra": "yes"}),
        },
    )
    parts = parse(body)
    assert [(p.name, p.filename, p.content_type, bytes(p.data)) for p in parts] == [
        ("a", None, None, b"1"),
        ("b", None, None, b"x"),
        ("b", None, None, b"y"),
        ("flag", None, None, b"true"),
        ("none", None, None, b""),
        ("num", None, None, b"2.5"),
        ("f1", "hello.txt", "text/plain", b"hello world"),
        ("f2", "data.bin", "application/x-custom", b"\x00\x01\x02"),
        ("f3", None, "application/octet-stream", b"text content"),
        ("f4", "h.json", "application/json", b"{}"),
    ]
    assert parts[-1].headers["x-extra"] == "yes"
    assert "filename" not in parts[8].disposition


def test_list_of_pairs_keeps_order_and_repeats() -> None:
    body = MultipartBody(
        data=[("z", "1"), ("a", "2"), ("z", "3")],
        files=[("up", ("a.txt", b"A")), ("up", ("b.txt", b"B"))],
    )
    parts = parse(body)
    assert [(p.name, p.filename, bytes(p.data)) for p in parts] == [
        ("z", None, b"1"),
        ("a", None, b"2"),
        ("z", None, b"3"),
        ("up", "a.txt", b"A"),
        ("up", "b.txt", b"B"),
    ]


def test_bare_contents_get_default_filenames(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n1,2\n")
    with path.open("rb") as fileobj:
        body = MultipartBody(files={"file": fileobj, "raw": b"xyz", "text": "é"})
        parts = parse(body)
    assert [(p.name, p.filename, p.content_type, bytes(p.data)) for p in parts] == [
        ("file", "report.csv", "text/csv", b"a,b\n1,2\n"),
        ("raw", "upload", "application/octet-stream", b"xyz"),
        ("text", "upload", "application/octet-stream", "é".encode()),
    ]


def test_content_type_from_headers_and_explicit_wins() -> None:
    body = MultipartBody(
        files={
            "a": ("a.txt", b"1", None, {"Content-Type": "text/x-a"}),
            "b": ("b.txt", b"2", "text/x-b", {"Content-Type": "text/x-ignored"}),
            "c": ("noext", b"3"),
            "d": ("backup.tar.gz", b"4"),
            "e": ("backup.tar.xz", b"5"),
        }
    )
    assert [p.content_type for p in parse(body)] == [
        "text/x-a",
        "text/x-b",
        "application/octet-stream",
        "application/gzip",
        "application/octet-stream",
    ]


def test_big_file_is_streamed_from_disk(tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(payload)
    with path.open("rb") as fileobj:
        body = MultipartBody(data={"k": "v"}, files={"big": ("big.bin", fileobj)})
        assert body.content_length is not None
        assert body.content_length > len(payload)
        assert max(len(chunk) for chunk in body) <= READ_SIZE
        parts = parse(body)
    assert parts[1].filename == "big.bin"
    assert bytes(parts[1].data) == payload


def test_file_is_read_from_its_position(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"skipme:payload")
    with path.open("rb") as fileobj:
        fileobj.seek(7)
        body = MultipartBody(files={"f": ("f.bin", fileobj)})
        assert bytes(parse(body)[0].data) == b"payload"
        # A second iteration (a redirect or a retry) seeks back to that position.
        assert bytes(parse(body)[0].data) == b"payload"


def test_second_iteration_rewinds_bytesio() -> None:
    fileobj = io.BytesIO(b"content")
    body = MultipartBody(files={"f": ("f", fileobj)})
    first = b"".join(body)
    fileobj.read()  # someone moved the position meanwhile
    assert b"".join(body) == first
    assert body.content_length == len(first)


def test_non_seekable_stream_is_chunked_and_single_use() -> None:
    payload = os.urandom(200_000)
    stream = NonSeekable(payload)
    body = MultipartBody(files={"s": ("s.bin", stream)})
    assert body.content_length is None
    parts = parse(body)
    assert bytes(parts[0].data) == payload
    assert max(stream.reads) <= READ_SIZE
    with pytest.raises(StreamConsumed):
        iter(body)


def test_pipe_is_not_seekable() -> None:
    read_fd, write_fd = os.pipe()
    with open(read_fd, "rb") as reader, open(write_fd, "wb") as writer:
        writer.write(b"piped")
        writer.close()
        body = MultipartBody(files={"p": ("p", reader)})
        assert body.content_length is None
        assert bytes(parse(body)[0].data) == b"piped"
        with pytest.raises(StreamConsumed):
            iter(body)


def test_filename_and_name_escaping() -> None:
    body = MultipartBody(
        data={'we"ird\r\nname': "v"},
        files={"f": ('a"b\rc\nd é.txt', b"x")},
    )
    raw = b"".join(body)
    assert b'name="we%22ird%0D%0Aname"' in raw
    assert 'filename="a%22b%0Dc%0Ad é.txt"'.encode() in raw
    parts = parse(body)
    assert parts[0].name == "we%22ird%0D%0Aname"
    assert parts[1].filename == "a%22b%0Dc%0Ad é.txt"


def test_given_boundary_and_quoting() -> None:
    body = MultipartBody(data={"a": "b"}, boundary=b"simple-boundary")
    assert body.content_type == "multipart/form-data; boundary=simple-boundary"
    assert b"".join(body) == (
        b"--simple-boundary\r\n"
        b'Content-Disposition: form-data; name="a"\r\n\r\n'
        b"b\r\n"
        b"--simple-boundary--\r\n"
    )
    quoted = MultipartBody(data={"a": "b"}, boundary=b"with:colon=and space")
    assert quoted.content_type == 'multipart/form-data; boundary="with:colon=and space"'
    assert bytes(parse(quoted)[0].data) == b"b"


@pytest.mark.parametrize("boundary", [b"", b"x" * 71, b"ends with space ", b"bad\r\n", b"semi;"])
def test_invalid_boundary(boundary: bytes) -> None:
    with pytest.raises(ValueError):
        MultipartBody(data={"a": "b"}, boundary=boundary)


def test_random_boundaries_differ() -> None:
    first, second = MultipartBody(data={"a": "b"}), MultipartBody(data={"a": "b"})
    assert first.boundary != second.boundary
    assert len(first.boundary) >= 32


def test_empty_body() -> None:
    body = MultipartBody()
    assert b"".join(body) == b"--" + body.boundary + b"--\r\n"
    assert body.content_length == len(b"".join(body))


def test_large_bytes_content_is_not_copied_into_a_chunk() -> None:
    payload = os.urandom(READ_SIZE * 3)
    body = MultipartBody(data={"a": "b"}, files={"f": ("f", payload)})
    assert any(chunk is payload for chunk in body)
    assert bytes(parse(body)[1].data) == payload


def test_file_that_shrank_raises(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 1000)
    with path.open("rb") as fileobj:
        body = MultipartBody(files={"f": ("f", fileobj)})
        path.write_bytes(b"x" * 10)  # truncated after the length was computed
        with pytest.raises(LocalProtocolError):
            b"".join(body)


def test_file_that_grew_sends_only_the_announced_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 10)
    with path.open("rb") as fileobj:
        body = MultipartBody(files={"f": ("f", fileobj)})
        with path.open("ab") as appender:
            appender.write(b"y" * 10)
        assert bytes(parse(body)[0].data) == b"x" * 10


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"f": io.StringIO("text")}, TypeError),
        ({"f": 123}, TypeError),
        ({"f": ("a",)}, TypeError),
        ({"f": ("a", b"x", "text/plain", {}, "extra")}, TypeError),
        ({"f": (b"name", b"x")}, TypeError),
        ({"f": ("a", b"x", None, {"Bad Name": "v"})}, ValueError),
        ({"f": ("a", b"x", None, {"X-H": "v\r\nInjected: 1"})}, ValueError),
        ({"f": ("a", b"x", None, {"Content-Disposition": "attachment"})}, ValueError),
        ({"f": ("a", b"x", "text/plain\r\nX: y")}, ValueError),
        ({"f": ("a", b"x", b"text/plain")}, TypeError),
        ({"f": ("a", b"x", None, [("X-H", "v")])}, TypeError),
    ],
)
def test_invalid_files(files: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        MultipartBody(files=files)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"a": "1", "b": "two words"}, b"a=1&b=two+words"),
        ({"k": ["x", "y"], "t": ("z",)}, b"k=x&k=y&t=z"),
        ([("b", 1), ("a", 2), ("b", 3)], b"b=1&a=2&b=3"),
        ({"yes": True, "no": False, "none": None, "f": 1.5}, b"yes=true&no=false&none=&f=1.5"),
        ({"é&=": "ü/?#"}, b"%C3%A9%26%3D=%C3%BC%2F%3F%23"),
        ({"raw": b"\xff\x00"}, b"raw=%FF%00"),
        ({}, b""),
        ({"empty": []}, b""),
    ],
)
def test_encode_form(data: dict[str, object] | list[tuple[str, object]], expected: bytes) -> None:
    assert encode_form(data) == expected  # type: ignore[arg-type]


def test_encode_form_round_trips_through_parse_qsl() -> None:
    data = [("q", "a b+c&d"), ("q", "é"), ("n", "")]
    assert parse_qsl(encode_form(data).decode(), keep_blank_values=True) == data


@pytest.mark.parametrize(
    "data",
    [{"a": object()}, {"a": [["nested"]]}, {1: "x"}, [("a", "b", "c")], ["ab"]],
)
def test_encode_form_rejects(data: object) -> None:
    with pytest.raises(TypeError):
        encode_form(data)  # type: ignore[arg-type]


def test_multipart_rejects_bad_data_values() -> None:
    with pytest.raises(TypeError):
        MultipartBody(data={"a": {"nested": "dict"}})  # type: ignore[dict-item]


def test_iteration_yields_bytes_only() -> None:
    body = MultipartBody(data={"a": "b"}, files={"f": io.BytesIO(b"x")})
    assert all(type(chunk) is bytes for chunk in list(body))


class RegularButUnseekable(io.RawIOBase):
    """A wrapper over a regular file that reports no seeking: fstat still gives the size."""

    def __init__(self, fileobj: io.BufferedReader) -> None:
        self._file = fileobj

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._file.tell()

    def fileno(self) -> int:
        return self._file.fileno()

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)


def test_size_of_unseekable_regular_file_from_fstat(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    with path.open("rb") as fileobj:
        fileobj.seek(4)
        body = MultipartBody(files={"f": ("f.bin", RegularButUnseekable(fileobj))})
        assert body.content_length is not None
        assert bytes(parse(body)[0].data) == b"456789"  # parse() checks content_length
        with pytest.raises(StreamConsumed):
            iter(body)


class OddReader:
    """A minimal file-like: read() only, returning bytearray chunks, or str by mistake."""

    def __init__(self, chunks: list[bytes | bytearray | str]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""  # type: ignore[return-value]


def test_reader_without_tell_and_bytearray_chunks() -> None:
    body = MultipartBody(files={"f": ("f", OddReader([bytearray(b"ab"), b"cd"]))})
    assert body.content_length is None
    chunks = list(body)
    assert all(type(chunk) is bytes for chunk in chunks)
    assert b"\r\nabcd\r\n" in b"".join(chunks)


def test_reader_returning_str_is_refused() -> None:
    body = MultipartBody(files={"f": ("f", OddReader(["text"]))})
    with pytest.raises(TypeError, match="binary mode"):
        list(body)


def test_bare_file_with_unusable_name() -> None:
    stream = io.BytesIO(b"x")
    stream.name = "/some/dir/"
    assert parse(MultipartBody(files={"f": stream}))[0].filename == "upload"


class TellOnly(OddReader):
    """Knows its position but cannot seek and has no file descriptor."""

    def tell(self) -> int:
        return 0

    def seekable(self) -> bool:
        return False


def test_reader_with_tell_but_no_size() -> None:
    body = MultipartBody(files={"f": ("f", TellOnly([b"abc"]))})
    assert body.content_length is None
    assert b"\r\nabc\r\n" in b"".join(body)
