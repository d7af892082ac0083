"""Request bodies for forms: ``application/x-www-form-urlencoded`` and ``multipart/form-data``.

``encode_form`` encodes ``data=`` without files. ``MultipartBody`` lays out
``data=`` fields and ``files=`` uploads (RFC 7578, with the escaping of the
HTML form submission algorithm) and streams file contents in 64 KiB reads,
so a large upload is never held in memory. No sockets here: the only IO is
reading, and seeking, the caller's file objects.
"""

from __future__ import annotations

import io
import mimetypes
import os
import re
import secrets
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias
from urllib.parse import quote_plus

from .._exceptions import LocalProtocolError, StreamConsumed

__all__ = [
    "READ_SIZE",
    "FileContent",
    "FileTypes",
    "FormValue",
    "MultipartBody",
    "PrimitiveData",
    "RequestData",
    "RequestFiles",
    "SupportsReadBytes",
    "encode_form",
]

#: One form value; lists (or tuples) of them repeat the key.
PrimitiveData: TypeAlias = str | bytes | int | float | bool | None
FormValue: TypeAlias = PrimitiveData | Sequence[PrimitiveData]
#: ``data=``: a mapping, or pairs when order or repeated keys matter.
RequestData: TypeAlias = Mapping[str, FormValue] | Sequence[tuple[str, FormValue]]


class SupportsReadBytes(Protocol):
    """A binary file object: ``read(size)`` returns bytes, ``b""`` at the end.

    ``tell``/``seek``/``seekable``/``fileno`` are used when present, to size
    the body and to replay it.
    """

    def read(self, size: int = ..., /) -> bytes: ...


#: The content of one upload: a binary file object, bytes, or text (sent as UTF-8).
FileContent: TypeAlias = SupportsReadBytes | bytes | str
#: One upload: the content alone, or ``(filename, content[, content_type[, headers]])``.
FileTypes: TypeAlias = (
    FileContent
    | tuple[str | None, FileContent]
    | tuple[str | None, FileContent, str | None]
    | tuple[str | None, FileContent, str | None, Mapping[str, str]]
)
#: ``files=``: a mapping of field name to upload, or pairs (several files per field).
RequestFiles: TypeAlias = Mapping[str, FileTypes] | Sequence[tuple[str, FileTypes]]

#: How much of a file one chunk of the body holds.
READ_SIZE = 64 * 1024

# RFC 2046 §5.1.1: boundary characters; a boundary must not end with a space.
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
# RFC 9110 token characters: a boundary made only of these needs no quotes.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_IN_VALUE = re.compile(r"[\r\n\x00]")


def _escape(name: str) -> str:
    """Escape a field name or filename as the HTML form submission algorithm does."""
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _primitive(key: str, value: object) -> bytes:
    # bool before int: bool is an int subclass.
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (int, float)):
        return str(value).encode("ascii")
    raise TypeError(
        f"form value for {key!r} must be str, bytes, int, float, bool or None, "
        f"not {type(value).__name__}"
    )


def _pairs(
    data: Mapping[str, object] | Sequence[tuple[str, object]],
) -> Iterator[tuple[str, object]]:
    items = data.items() if isinstance(data, Mapping) else data
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(f"form items must be (name, value) pairs, not {item!r}")
        key, value = item
        if not isinstance(key, str):
            raise TypeError(f"form field names must be str, not {type(key).__name__}")
        yield key, value


def _fields(data: RequestData) -> Iterator[tuple[str, bytes]]:
    """Each (name, encoded value), lists and tuples expanded into repeated names."""
    for key, value in _pairs(data):
        if isinstance(value, (list, tuple)):
            for element in value:
                yield key, _primitive(key, element)
        else:
            yield key, _primitive(key, value)


def encode_form(data: RequestData) -> bytes:
    """Encode ``data=`` as ``application/x-www-form-urlencoded`` (UTF-8).

    Values may be str, bytes, int, float, bool (``true``/``false``) or None
    (an empty value); a list or tuple repeats the key once per element.
    """
    return "&".join(
        f"{quote_plus(key)}={quote_plus(value)}" for key, value in _fields(data)
    ).encode("ascii")


@dataclass
class _Part:
    """One part: its head (boundary line and headers) and its content."""

    head: bytes
    content: bytes = b""
    file: Any = None  # a SupportsReadBytes, maybe with tell/seek
    start: int | None = None  # where reading the file begins
    seekable: bool = False
    size: int | None = None  # bytes of the file to send, when known


def _default_filename(content: object) -> str:
    name = getattr(content, "name", None)
    if isinstance(name, (str, bytes, os.PathLike)):
        base = os.path.basename(os.fsdecode(name))
        if base:
            return base
    return "upload"


def _guess_type(filename: str | None) -> str:
    """The Content-Type of an upload, from its filename's extension."""
    if not filename:
        return "application/octet-stream"
    guessed, encoding = mimetypes.guess_type(filename)
    if encoding is not None:
        # "x.tar.gz" is guessed as a tar file compressed with gzip: the bytes
        # sent are the compressed file.
        return "application/gzip" if encoding == "gzip" else "application/octet-stream"
    return guessed or "application/octet-stream"


def _measure(fileobj: Any) -> tuple[int | None, bool, int | None]:
    """(current position, seekable, bytes left) of a file object, each None if unknown."""
    # File-likes vary: any of these methods may be missing or refuse (pipes, sockets).
    failures = (AttributeError, OSError, ValueError)
    try:
        start = fileobj.tell()
    except failures:
        return None, False, None
    if not isinstance(start, int) or start < 0:
        return None, False, None
    try:
        if fileobj.seekable():
            fileobj.seek(0, io.SEEK_END)
            end = fileobj.tell()
            fileobj.seek(start)
            if isinstance(end, int):
                return start, True, max(end - start, 0)
    except failures:
        pass
    # Not seekable but a regular file (some wrappers): its size is still known.
    try:
        info = os.fstat(fileobj.fileno())
    except (*failures, TypeError):
        return start, False, None
    if stat.S_ISREG(info.st_mode):
        return start, False, max(info.st_size - start, 0)
    return start, False, None


def _part_headers(
    name: str, filename: str | None, content_type: str | None, headers: Mapping[str, str]
) -> bytes:
    disposition = f'form-data; name="{_escape(name)}"'
    if filename is not None:
        disposition += f'; filename="{_escape(filename)}"'
    lines = [f"Content-Disposition: {disposition}"]
    extra: list[str] = []
    for key, value in headers.items():
        if not isinstance(key, str) or not _HEADER_NAME.fullmatch(key):
            raise ValueError(f"invalid part header name {key!r}")
        if not isinstance(value, str) or _FORBIDDEN_IN_VALUE.search(value):
            raise ValueError(f"invalid value for part header {key!r}: {value!r}")
        lowered = key.lower()
        if lowered == "content-disposition":
            raise ValueError("Content-Disposition of a part is set from its name and filename")
        if lowered == "content-type":
            # The explicit content_type argument wins over a header of the same name.
            if content_type is None:
                content_type = value
            continue
        extra.append(f"{key}: {value}")
    if content_type is not None:
        if _FORBIDDEN_IN_VALUE.search(content_type):
            raise ValueError(f"invalid content type {content_type!r}")
        lines.append(f"Content-Type: {content_type}")
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _unpack_file(
    name: str, value: object
) -> tuple[str | None, object, str | None, Mapping[str, str]]:
    if isinstance(value, tuple):
        if not 2 <= len(value) <= 4:
            raise TypeError(
                f"file tuple for {name!r} must be (filename, content[, content_type[, headers]])"
            )
        filename, content = value[0], value[1]
        content_type = value[2] if len(value) > 2 else None
        headers = value[3] if len(value) > 3 else {}
        if filename is not None and not isinstance(filename, str):
            raise TypeError(f"filename for {name!r} must be str or None")
        if content_type is not None and not isinstance(content_type, str):
            raise TypeError(f"content type for {name!r} must be str or None")
        if not isinstance(headers, Mapping):
            raise TypeError(f"part headers for {name!r} must be a mapping")
        return filename, content, content_type, headers
    return _default_filename(value), value, None, {}


class MultipartBody:
    """A ``multipart/form-data`` body: ``data=`` fields first, then ``files=``.

    Iterating yields the body in chunks; file contents are read from the
    position each file had when the body was built, ``READ_SIZE`` bytes at a
    time. Iterating again (a redirect or a retry) seeks every file back to
    that position, or raises ``StreamConsumed`` if one cannot seek.

    ``content_length`` is the exact body size when every file's size is known
    (seekable, or a regular file), else None and the body is sent chunked. A
    file with a known size is sent as exactly that many bytes; one that
    shrank meanwhile raises ``LocalProtocolError``.

    A file part's Content-Type is the one given, else guessed from the
    filename, else ``application/octet-stream``. A bare file object is named
    after its ``name`` attribute, other bare contents ``upload``; a filename
    of None in a tuple sends no filename.
    """

    def __init__(
        self,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        boundary: bytes | None = None,
    ) -> None:
        if boundary is None:
            boundary = secrets.token_hex(16).encode("ascii")
        elif not isinstance(boundary, bytes) or not _BOUNDARY.fullmatch(boundary):
            raise ValueError(f"invalid multipart boundary {boundary!r} (RFC 2046 §5.1.1)")
        self.boundary = boundary
        shown = boundary.decode("ascii")
        if not _TOKEN.fullmatch(boundary):
            shown = f'"{shown}"'
        self.content_type = f"multipart/form-data; boundary={shown}"

        self._parts: list[_Part] = []
        for name, value in _fields(data or {}):
            self._parts.append(_Part(self._head(name, None, None, {}), content=value))
        for name, upload in _pairs(files or {}):
            self._parts.append(self._file_part(name, upload))
        self._tail = b"--" + boundary + b"--\r\n"
        self._iterated = False

        total: int | None = len(self._tail)
        for part in self._parts:
            size = part.size if part.file is not None else len(part.content)
            if total is None or size is None:
                total = None
            else:
                total += len(part.head) + size + 2  # the CRLF ending the content
        self.content_length = total

    def _head(
        self, name: str, filename: str | None, content_type: str | None, headers: Mapping[str, str]
    ) -> bytes:
        return (
            b"--" + self.boundary + b"\r\n" + _part_headers(name, filename, content_type, headers)
        )

    def _file_part(self, name: str, upload: object) -> _Part:
        filename, content, content_type, headers = _unpack_file(name, upload)
        has_type = content_type is not None or any(
            isinstance(key, str) and key.lower() == "content-type" for key in headers
        )
        if not has_type:
            content_type = _guess_type(filename)
        head = self._head(name, filename, content_type, headers)
        if isinstance(content, str):
            return _Part(head, content=content.encode("utf-8"))
        if isinstance(content, (bytes, bytearray, memoryview)):
            return _Part(head, content=bytes(content))
        if isinstance(content, io.TextIOBase):
            raise TypeError(f"file for {name!r} is open in text mode; open it in binary mode")
        if not callable(getattr(content, "read", None)):
            raise TypeError(
                f"file content for {name!r} must be a binary file object, bytes or str, "
                f"not {type(content).__name__}"
            )
        start, seekable, size = _measure(content)
        return _Part(head, file=content, start=start, seekable=seekable, size=size)

    def __iter__(self) -> Iterator[bytes]:
        """The body in chunks; raises StreamConsumed at once if it cannot be replayed."""
        if self._iterated:
            for part in self._parts:
                if part.file is not None and not part.seekable:
                    raise StreamConsumed(
                        "a multipart body with a non-seekable file cannot be sent twice"
                    )
        self._iterated = True
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        # Heads and small contents are gathered so that a chunk is not a handful of bytes.
        pending: list[bytes] = []
        for part in self._parts:
            pending.append(part.head)
            if part.file is not None:
                yield b"".join(pending)
                yield from self._read(part)
                pending = [b"\r\n"]
            elif len(part.content) > READ_SIZE:
                yield b"".join(pending)
                yield part.content
                pending = [b"\r\n"]
            else:
                pending += (part.content, b"\r\n")
        pending.append(self._tail)
        yield b"".join(pending)

    @staticmethod
    def _read(part: _Part) -> Iterator[bytes]:
        fileobj = part.file
        assert fileobj is not None
        if part.seekable and part.start is not None:
            fileobj.seek(part.start)
        remaining = part.size
        while remaining is None or remaining > 0:
            wanted = READ_SIZE if remaining is None else min(READ_SIZE, remaining)
            chunk = fileobj.read(wanted)
            if isinstance(chunk, str):
                raise TypeError("a file of a multipart body returned str; open it in binary mode")
            if not chunk:
                if remaining:
                    raise LocalProtocolError(
                        f"a file of a multipart body ended {remaining} bytes before the size "
                        "announced in Content-Length"
                    )
                return
            if not isinstance(chunk, bytes):
                chunk = bytes(chunk)
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
