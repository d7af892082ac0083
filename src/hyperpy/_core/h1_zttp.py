"""HTTP/1.1 on zttp: ``H1Client`` and ``H1Server``, the engine with a compiled core.

``h1_h11`` puts these classes on h11; this module puts them on zttp, with the
same interface (``h1.H1ClientEngine``, ``h1.H1ServerEngine``) and the same
outcomes. What leaves it are ``h1``'s own events, and every rule the h11 engine
enforces (smuggling, limits, target forms, keep-alive, 100-continue, protocol
switches) gives the same status and the same closing behaviour here.

Where zttp and h11 differ, the difference is absorbed in this module:

- zttp accepts some heads h11 refuses (a list of transfer codings ending in
  ``chunked``, several Transfer-Encoding or Host fields on HTTP/1.0, obs-text in
  the target, a 101 nobody asked for): they are refused here as h11 does.
- zttp refuses some heads h11 accepts before hyperpy refuses them (CL+TE, an
  ``HTTP/2.0`` request line, too many fields): the head's bytes are then judged
  by h11's rules and hyperpy's, so the status and the detail are h11's.
- zttp reports no states and keeps unparsed bytes to itself: the states are kept
  here with h11's transitions, and the server counts where each request ends in
  the byte stream (so ``trailing_data`` after a 101 is exact). A client starts
  a fresh zttp connection for each exchange, after checking that nothing came
  after the response.
- zttp writes a reason phrase of its own and frames bodies by copying them: it
  serializes (and validates) heads here, the status line is rewritten when the
  caller's reason differs, and bodies are framed here as h11 frames them
  (large chunks are not copied).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

import zttp

from .._config import ServerLimits
from .._exceptions import LocalProtocolError, RemoteProtocolError
from .fields import SERVER_HEADER, http_date
from .h1 import (
    CLOSED,
    COALESCE_LIMIT,
    CONNECTION_SPECIFIC,
    H2C_UPGRADE,
    NEED_DATA,
    PAUSED,
    Data,
    EndOfMessage,
    Event,
    Fields,
    RequestHead,
    RequestRejected,
    ResponseHead,
    ServerWriting,
    body_framing,
    check_request_head,
    coalesce,
    message,
    origin_form,
)

if TYPE_CHECKING:
    from .h1 import H1ClientEngine, H1ServerEngine

__all__ = [
    "CLOSED",
    "COALESCE_LIMIT",
    "NEED_DATA",
    "PAUSED",
    "Data",
    "EndOfMessage",
    "Event",
    "Fields",
    "H1Client",
    "H1Server",
    "RequestHead",
    "RequestRejected",
    "ResponseHead",
    "body_framing",
    "coalesce",
]

# -- states ---------------------------------------------------------------------------
#
# h11's per-side states, as small ints. The properties of both classes are defined by
# them exactly as ``h1_h11`` defines its properties by h11's.

_IDLE: Final = 0
_SEND_RESPONSE: Final = 1
_SEND_BODY: Final = 2
_DONE: Final = 3
_MUST_CLOSE: Final = 4
_CLOSED: Final = 5
_MIGHT_SWITCH: Final = 6
_SWITCHED: Final = 7
_ERROR: Final = 8


def _settle(client: int, server: int, proposal: bool, keep_alive: bool) -> tuple[int, int]:
    """The states after h11's state-triggered transitions (``_state.py``)."""
    if keep_alive and not proposal and client <= _DONE and server <= _DONE:
        return client, server  # the usual case: no transition applies
    while True:
        before = (client, server)
        if proposal and client == _DONE:
            client = _MIGHT_SWITCH
        elif not proposal and client == _MIGHT_SWITCH:
            client = _DONE
        if not keep_alive:
            if client == _DONE:
                client = _MUST_CLOSE
            if server == _DONE:
                server = _MUST_CLOSE
        joint = (client, server)
        if joint == (_MIGHT_SWITCH, _SWITCHED):
            client = _SWITCHED
        elif joint in ((_CLOSED, _DONE), (_CLOSED, _IDLE), (_ERROR, _DONE)):
            server = _MUST_CLOSE
        elif joint in ((_DONE, _CLOSED), (_IDLE, _CLOSED), (_DONE, _ERROR)):
            client = _MUST_CLOSE
        if (client, server) == before:
            return client, server


# -- body framing on the way out (h11's writers) ------------------------------------------

_CHUNKED: Final = -1  # chunked framing
_UNTIL_CLOSE: Final = -2  # the body ends when the connection closes (HTTP/1.0 style)
# Any value >= 0 is the number of bytes a Content-Length still owes.

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_FIELD_CONTENT = rb"[^\x00\s]+(?:[ \t]+[^\x00\s]+)*"
_NAME_RE = re.compile(_TOKEN)
_VALUE_RE = re.compile(rb"(?:" + _FIELD_CONTENT + rb")?")
_REASON_RE = re.compile(rb"(?:[ \t]|[^\x00\s])*")
_DIGITS_RE = re.compile(rb"[0-9]+")


def _length(value: bytes) -> int:
    """A Content-Length value we send, checked as h11 checks it."""
    if _DIGITS_RE.fullmatch(value) is None:
        raise LocalProtocolError("bad Content-Length")
    return int(value)


def _trailer_block(trailers: Fields) -> bytes:
    """The end of a chunked body: h11's bytes, host fields first, names as given."""
    for name, value in trailers:
        if _NAME_RE.fullmatch(name) is None:
            raise LocalProtocolError(f"Illegal header name {name!r}")
        if _VALUE_RE.fullmatch(value) is None:
            raise LocalProtocolError(f"Illegal header value {value!r}")
    ordered = [t for t in trailers if t[0].lower() == b"host"]
    ordered += [t for t in trailers if t[0].lower() != b"host"]
    return b"".join([b"0\r\n", *[b"%s: %s\r\n" % t for t in ordered], b"\r\n"])


def _body_piece(left: int, data: bytes) -> tuple[int, list[bytes]]:
    """The framed pieces of a body chunk (the data itself is never copied) and what
    the Content-Length then still owes."""
    if left >= 0:
        if len(data) > left:
            raise LocalProtocolError("Too much data for declared Content-Length")
        return left - len(data), [data]
    if left == _CHUNKED:
        return left, [b"%x\r\n" % len(data), data, b"\r\n"] if data else []
    return left, [data]


def _body_end(left: int, trailers: Fields) -> bytes:
    if left == _CHUNKED:
        return _trailer_block(trailers)
    if left > 0:
        raise LocalProtocolError("Too little data for declared Content-Length")
    if trailers:
        if left == 0:
            raise LocalProtocolError("Content-Length and trailers don't mix")
        raise LocalProtocolError("can't send trailers to HTTP/1.0 client")
    return b""


def _tokens(value: bytes) -> list[bytes]:
    """A comma-separated field value as h11 reads it: lowercase, trimmed, no empties."""
    return [t for t in (part.strip() for part in value.lower().split(b",")) if t]


def _closes(values: list[bytes]) -> bool:
    """Whether Connection field values hold the ``close`` token."""
    return any(b"close" in value.lower() and b"close" in _tokens(value) for value in values)


def _lower_fields(fields: list[tuple[bytes, bytes]]) -> Fields:
    return [(name.lower(), value) for name, value in fields]


# -- judging a head zttp refused, by h11's rules (the error path only) ---------------------

_REQUEST_LINE_RE = re.compile(
    rb"(?P<method>" + _TOKEN + rb") (?P<target>[\x21-\x7e]+) HTTP/(?P<version>[0-9]\.[0-9])"
)
_HEADER_LINE_RE = re.compile(
    rb"(?P<name>" + _TOKEN + rb"):[ \t]*(?P<value>(?:" + _FIELD_CONTENT + rb")?)[ \t]*"
)
_BLANK_LINE_RE = re.compile(rb"\n\r?\n")


def _h11_head(raw: bytes) -> RequestHead | RequestRejected | None:
    """What h11 makes of a request head: the head, its refusal, or None (still
    incomplete, with nothing refused yet)."""
    if raw[:1] == b"\n" or raw[:2] == b"\r\n":
        return RequestRejected(400, "no request line received")
    blank = _BLANK_LINE_RE.search(raw)
    if blank is None:
        if raw and raw[0] < 0x21:
            return RequestRejected(400, "illegal request line")
        return None
    lines = [line[:-1] if line[-1:] == b"\r" else line for line in raw[: blank.end()].split(b"\n")]
    del lines[-2:]
    request_line = _REQUEST_LINE_RE.fullmatch(lines[0])
    if request_line is None:
        return RequestRejected(400, f"illegal request line: {bytearray(lines[0])!r}")
    unfolded: list[bytes] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):  # obs-fold: a continuation of the line before
            if not unfolded:
                return RequestRejected(400, "continuation line at start of headers")
            unfolded[-1] += b" " + line.lstrip(b" \t")
        else:
            unfolded.append(line)
    parsed: Fields = []
    for line in unfolded:
        field = _HEADER_LINE_RE.fullmatch(line)
        if field is None:
            return RequestRejected(400, f"illegal header line: {bytearray(line)!r}")
        parsed.append((field["name"].lower(), field["value"]))
    headers: Fields = []
    length: bytes | None = None
    codings = hosts = 0
    for name, value in parsed:
        if name == b"content-length":
            lengths = {part.strip() for part in value.split(b",")}
            if len(lengths) != 1:
                return RequestRejected(400, "conflicting Content-Length headers")
            value = lengths.pop()
            if _DIGITS_RE.fullmatch(value) is None or len(value) > 20:
                return RequestRejected(400, "bad Content-Length")
            if length is not None:
                if value != length:
                    return RequestRejected(400, "conflicting Content-Length headers")
                continue
            length = value
        elif name == b"transfer-encoding":
            # h11 hints 501 here; hyperpy answers 400 (see ``h1_h11.H1Server.next_event``).
            if codings:
                return RequestRejected(400, "multiple Transfer-Encoding headers")
            value = value.lower()
            if value != b"chunked":
                return RequestRejected(400, "Only Transfer-Encoding: chunked is supported")
            codings += 1
        elif name == b"host":
            hosts += 1
        headers.append((name, value))
    version = request_line["version"]
    if version == b"1.1" and not hosts:
        return RequestRejected(400, "Missing mandatory Host: header")
    if hosts > 1:
        return RequestRejected(400, "Found multiple Host: headers")
    return RequestHead(request_line["method"], request_line["target"], headers, version)


def _policy(limits: ServerLimits, request: RequestHead) -> RequestHead | RequestRejected:
    """hyperpy's rules for a request head (``h1.check_request_head``), as a value."""
    try:
        return check_request_head(limits, request)
    except RequestRejected as rejected:
        return rejected


# -- the client -----------------------------------------------------------------------

# Request fields whose presence changes what the exchange does.
_REQUEST_FIELDS = frozenset(
    {b"host", b"content-length", b"transfer-encoding", b"connection", b"upgrade"}
)


class H1Client:
    """One client-side HTTP/1.1 connection's protocol state."""

    __slots__ = (
        "_conn",
        "_eof",
        "_heads",
        "_keep_alive",
        "_left",
        "_leftover",
        "_mark",
        "_max_head",
        "_our",
        "_proposal",
        "_raw",
        "_their",
        "_total",
    )

    def __init__(self, max_head_bytes: int = 64 * 1024) -> None:
        self._max_head = max_head_bytes
        self._conn = zttp.Connection(zttp.CLIENT)
        self._our = _IDLE
        self._their = _IDLE
        self._keep_alive = True
        self._proposal = False  # the request offered an Upgrade
        self._left = 0  # what the request body owes (see _CHUNKED)
        self._eof = False
        # Bytes came after the response (None: it has not ended). zttp keeps unparsed
        # bytes to itself, so once a response ends its parser is asked (by ending its
        # stream) and later bytes are only noted: nothing may be read as the answer to
        # the next request.
        self._leftover: bool | None = None
        self._total = 0  # bytes received in this exchange
        self._mark = 0  # ... when the last head arrived: the next one starts after
        # Bytes received until the final response head: after a 101 they hold what
        # follows it (zttp keeps its unparsed bytes to itself).
        self._raw: list[bytes] | None = []
        self._heads = 0  # response heads seen in this exchange

    def _settle(self) -> None:
        if self._keep_alive and not self._proposal and self._their <= _DONE >= self._our:
            return  # the usual case: no transition applies
        self._our, self._their = _settle(self._our, self._their, self._proposal, self._keep_alive)

    def start_request(self, method: bytes, target: bytes, headers: Fields) -> bytes:
        """The request head."""
        if self._our != _IDLE:
            raise LocalProtocolError("can't send a request: one is already under way")
        left = hosts = 0
        close = proposal = False
        for name, value in headers:
            if name in _REQUEST_FIELDS:
                if name == b"host":
                    hosts += 1
                elif name == b"content-length":
                    declared = _length(value)
                    if left != _CHUNKED:
                        left = declared
                elif name == b"transfer-encoding":
                    if value.lower() != b"chunked":
                        raise LocalProtocolError("Only Transfer-Encoding: chunked is supported")
                    left = _CHUNKED  # h11: Transfer-Encoding beats Content-Length
                elif name == b"connection":
                    close = close or b"close" in _tokens(value)
                else:
                    proposal = proposal or bool(_tokens(value))
        # What h11 refuses to send.
        if not hosts:
            raise LocalProtocolError("Missing mandatory Host: header")
        if hosts > 1:
            raise LocalProtocolError("Found multiple Host: headers")
        if not target.isascii():
            raise LocalProtocolError("Illegal target characters")
        if headers[0][0] != b"host":  # h11 writes Host first
            headers = [f for f in headers if f[0] == b"host"] + [
                f for f in headers if f[0] != b"host"
            ]
        conn = self._conn
        try:
            conn.send_request(method, target, b"1.1", headers)
        except zttp.ProtocolError as exc:
            raise LocalProtocolError(str(exc)) from exc
        self._left = left
        self._our = _SEND_BODY
        self._their = _SEND_RESPONSE
        self._proposal = proposal
        if close:
            self._keep_alive = False
        return conn.data_to_send()

    def _body(self, data: bytes) -> list[bytes]:
        if self._our != _SEND_BODY:
            raise LocalProtocolError("can't send body data: no request body under way")
        try:
            self._left, pieces = _body_piece(self._left, data)
        except LocalProtocolError:
            self._our = _ERROR
            self._settle()
            raise
        return pieces

    def body(self, data: bytes) -> list[bytes]:
        """The framed pieces of a request-body chunk, small ones joined (the data
        itself is not copied unless joined)."""
        return coalesce(self._body(data))

    def end_request(self, trailers: Fields | None = None) -> bytes:
        """End of the request body; ``trailers`` need chunked framing (a streamed body)."""
        try:
            if self._our != _SEND_BODY:
                raise LocalProtocolError("can't end the request: no request body under way")
            end = _body_end(self._left, trailers or [])
        except LocalProtocolError as exc:
            if self._our == _SEND_BODY:
                self._our = _ERROR
                self._settle()
            raise LocalProtocolError(f"the request could not end: {exc}") from exc
        self._our = _DONE
        self._settle()
        return end

    def whole_request(
        self, method: bytes, target: bytes, headers: Fields, content: bytes
    ) -> list[bytes]:
        """The buffers that send a request whose body is in memory."""
        head = self.start_request(method, target, headers)
        pieces = self._body(content) if content else []
        return message(head, pieces, self.end_request(), len(content))

    def receive(self, data: bytes) -> None:
        """Feed bytes from the server (``b""``: it closed its side)."""
        if data:
            if self._leftover is not None:
                self._leftover = True
                return
            self._total += len(data)
            if self._raw is not None:
                self._raw.append(data)
        else:
            self._eof = True
            if self._leftover is not None:
                return
        self._conn.receive_data(data)

    def next_event(self) -> Event:
        """The next parsed event; a malformed response raises RemoteProtocolError."""
        their = self._their
        if their >= _DONE:
            return self._after_response(their)
        try:
            event = self._conn.next_event()
        except zttp.RemoteProtocolError as exc:
            self._fail()
            raise RemoteProtocolError(f"malformed response: {exc}") from exc
        kind = type(event)
        if kind is zttp.Data:
            return Data(event.data)  # type: ignore[union-attr]
        if kind is zttp.Response:
            return self._response(event)  # type: ignore[arg-type]
        if kind is zttp.EndOfMessage:
            self._leftover = self._bytes_follow()
            self._their = _DONE
            self._settle()
            trailers = event.trailers  # type: ignore[union-attr]
            return EndOfMessage(_lower_fields(trailers) if trailers else [])
        if event is zttp.NEED_DATA:
            if their == _SEND_RESPONSE and self._total - self._mark > self._max_head:
                self._fail()
                raise RemoteProtocolError("malformed response: Receive buffer too long")
            return NEED_DATA
        # The server closed its side with nothing buffered.
        if their == _SEND_RESPONSE:
            self._fail()
            raise RemoteProtocolError(
                "malformed response: the connection closed before a response began"
            )
        self._their = _CLOSED
        self._settle()
        return CLOSED

    def _bytes_follow(self) -> bool:
        """Whether zttp holds bytes past the response that just ended (its stream is
        ended to tell: nothing buffered reads as a clean close)."""
        conn = self._conn
        try:
            conn.start_next_cycle()
            if not self._eof:
                conn.receive_data(b"")
            return conn.next_event() is not zttp.CONNECTION_CLOSED
        except zttp.ProtocolError:
            return True

    def _after_response(self, their: int) -> Event:
        # h11's answers once the response is over.
        if their == _SWITCHED:
            return PAUSED
        if their == _ERROR:
            raise RemoteProtocolError(
                "malformed response: Can't receive data when peer state is ERROR"
            )
        if self._leftover:
            if their == _DONE:
                return PAUSED
            self._fail()
            raise RemoteProtocolError("malformed response: Got data when expecting EOF")
        if self._eof:
            self._their = _CLOSED
            self._settle()
            return CLOSED
        return NEED_DATA

    def _fail(self) -> None:
        self._their = _ERROR
        self._settle()

    def _response(self, event: zttp.Response) -> ResponseHead:
        fields = event.headers
        headers = fields.to_list(lowercase_names=True)  # type: ignore[union-attr]
        # h11 refuses transfer codings other than a lone "chunked"; zttp takes any list
        # that ends in it.
        if fields.get(b"transfer-encoding") is not None:  # type: ignore[union-attr]
            codings = fields.getall(b"transfer-encoding")  # type: ignore[union-attr]
            if len(codings) > 1:
                self._fail()
                raise RemoteProtocolError("malformed response: multiple Transfer-Encoding headers")
            if codings[0].lower() != b"chunked":
                self._fail()
                raise RemoteProtocolError(
                    "malformed response: Only Transfer-Encoding: chunked is supported"
                )
            headers = [(n, b"chunked" if n == b"transfer-encoding" else v) for n, v in headers]
        if len(fields.getall(b"content-length")) > 1:  # type: ignore[union-attr]
            headers = _one_length(headers)  # h11 keeps one of identical lengths
        status = event.status_code
        version = event.http_version
        head = ResponseHead(status, event.reason, headers, version)
        self._mark = self._total
        self._heads += 1
        if status < 200:
            if status == 101:
                if not self._proposal:
                    self._fail()
                    raise RemoteProtocolError(
                        "malformed response: Received server _SWITCH_UPGRADE event"
                        " without a pending proposal"
                    )
                self._their = _SWITCHED
                self._settle()
            return head
        self._raw = None
        self._their = _SEND_BODY
        self._proposal = False  # a final response refuses any switch
        if version < b"1.1":
            self._keep_alive = False
        else:
            connection = fields.getall(b"connection")  # type: ignore[union-attr]
            if connection and _closes(connection):
                self._keep_alive = False
        self._settle()
        return head

    @property
    def response_complete(self) -> bool:
        return self._their == _DONE

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after a 101 that switched protocols (a WebSocket's first)."""
        if self._their != _SWITCHED or not self._raw:
            return b""
        raw = b"".join(self._raw)
        end = 0
        for _ in range(self._heads):  # strict CRLF: each head ends at its first blank line
            end = raw.index(b"\r\n\r\n", end) + 4
        return raw[end:]

    @property
    def request_complete(self) -> bool:
        return self._our == _DONE

    @property
    def server_closed(self) -> bool:
        """The server will not accept another request on this connection."""
        return self._their in (_MUST_CLOSE, _CLOSED, _ERROR)

    def try_reuse(self) -> bool:
        """After a complete exchange: reset for the next request, if keep-alive allows.

        Bytes that came after the response (an unsolicited second response, or
        garbage) make the connection unusable: they must never be read as the
        answer to the next request.
        """
        if self._our != _DONE or self._their != _DONE or self._leftover:
            return False
        # The old parser's stream was ended to see past the response: a fresh one
        # reads the next (told of the end, if the server really closed, as h11 is).
        self._conn = conn = zttp.Connection(zttp.CLIENT)
        if self._eof:
            conn.receive_data(b"")
        self._our = self._their = _IDLE
        self._keep_alive = True
        self._proposal = False
        self._leftover = None
        self._total = self._mark = self._heads = 0
        self._raw = []
        return True


def _one_length(headers: Fields) -> Fields:
    """The fields with only the first of several (identical) Content-Length fields."""
    seen = False
    kept: Fields = []
    for name, value in headers:
        if name == b"content-length":
            if seen:
                continue
            seen = True
        kept.append((name, value))
    return kept


# -- the server -----------------------------------------------------------------------

# Request fields the server looks at while checking a head.
_HEAD_FIELDS = frozenset(
    {b"content-length", b"transfer-encoding", b"host", b"connection", b"upgrade"}
)
_CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"
_NEVER = 1 << 62  # an offset no stream reaches


class H1Server(ServerWriting):
    """One server-side HTTP/1.1 connection's protocol state, with its limits."""

    __slots__ = (
        "_chunked",
        "_closing",
        "_conn",
        "_end",
        "_eof",
        "_expect",
        "_head",
        "_keep_alive",
        "_left",
        "_length",
        "_limits",
        "_lost",
        "_method",
        "_need",
        "_our",
        "_proposal",
        "_raw",
        "_raw_at",
        "_scan",
        "_start",
        "_synth_end",
        "_their",
        "_total",
        "_trailer",
        "_version",
    )

    def __init__(self, limits: ServerLimits) -> None:
        self._limits = limits
        self._conn = zttp.Connection(zttp.SERVER)
        self._closing = False  # the next response says Connection: close
        self._chunked = False  # the response in progress is chunked (so may carry trailers)
        self._head = False  # the request being answered is a HEAD: the answer has no body
        self._their = _IDLE  # the client's side (h11's states)
        self._our = _IDLE
        self._keep_alive = True
        self._proposal = False  # the request offered an Upgrade
        self._expect = False  # the client waits for 100 Continue
        self._version: bytes | None = None  # the client's HTTP version
        self._method: bytes | None = None  # the request's method
        self._synth_end = False  # a bodyless request's end is still to be reported
        self._left = 0  # what the response body owes (see _CHUNKED)
        self._eof = False
        # Where requests start and end in the byte stream: zttp keeps the bytes it has
        # not parsed yet to itself, and after a 101 they are the new protocol's.
        self._raw: list[bytes] = []  # received buffers from absolute offset _raw_at
        self._raw_at = 0
        self._total = 0  # bytes received
        self._start = 0  # where the current request starts
        self._end = -1  # ... and ends, once known
        self._length = 0  # its Content-Length (-1: chunked)
        self._need = 0  # the first offset still needed; earlier buffers are dropped
        self._scan = -1  # a chunked body's next framing line, while one is read
        self._trailer = False  # ... which is in its trailer section
        self._lost = False  # the count went wrong (never seen): it is not guessed at

    def _settle(self) -> None:
        if self._keep_alive and not self._proposal and self._their <= _DONE >= self._our:
            return  # the usual case: no transition applies
        self._their, self._our = _settle(self._their, self._our, self._proposal, self._keep_alive)

    # -- receiving ------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Feed bytes from the client (``b""``: it closed its side)."""
        if data:
            start = self._total
            self._total = total = start + len(data)
            if total > self._need:
                if not self._raw:
                    self._raw_at = start
                self._raw.append(data)
                if self._scan >= 0:
                    self._scan_chunks()
        else:
            self._eof = True
        self._conn.receive_data(data)

    def next_event(self) -> Event:
        """The next request event; a request that breaks a rule raises RequestRejected."""
        their = self._their
        if their >= _DONE:
            return self._after_request(their)
        if self._synth_end:
            # zttp folds a bodyless request's end into its head; h11 reports it apart.
            self._synth_end = False
            return self._request_done([])
        try:
            event = self._conn.next_event()
        except zttp.RemoteProtocolError as exc:
            raise self._refused(str(exc)) from exc
        kind = type(event)
        if kind is zttp.Data:
            self._expect = False
            return Data(event.data)  # type: ignore[union-attr]
        if kind is zttp.Request:
            return self._request(event)  # type: ignore[arg-type]
        if kind is zttp.EndOfMessage:
            trailers = event.trailers  # type: ignore[union-attr]
            return self._request_done(_lower_fields(trailers) if trailers else [])
        if event is zttp.NEED_DATA:
            if their == _IDLE and self._total > self._start and not self._lost:
                self._check_partial_head()
            return NEED_DATA
        self._their = _CLOSED  # the client closed between requests
        self._settle()
        return CLOSED

    def _check_partial_head(self) -> None:
        """h11's checks on a head still arriving: it must not start with a control
        byte or a blank line, and must not outgrow the head limit."""
        buffer, at = self._buffer_from(self._start)
        first = buffer[self._start - at]
        if first < 0x21:
            self._their = _ERROR
            self._settle()
            if first == 0x0A or buffer[self._start - at : self._start - at + 2] == b"\r\n":
                raise RequestRejected(400, "no request line received")
            raise RequestRejected(400, "illegal request line")
        if self._total - self._start > self._limits.max_head_bytes:
            self._their = _ERROR
            self._settle()
            raise RequestRejected(431, "Receive buffer too long")

    def _after_request(self, their: int) -> Event:
        # h11's answers once the request is complete (zttp parses nothing more until
        # the next cycle).
        if their in (_MIGHT_SWITCH, _SWITCHED):
            return PAUSED
        if their == _ERROR:
            raise RequestRejected(400, "Can't receive data when peer state is ERROR")
        pending = self._total > self._end >= 0
        if their == _DONE and pending:
            return PAUSED
        if pending:
            raise RequestRejected(400, "Got data when expecting EOF")
        if self._eof:
            self._their = _CLOSED
            self._settle()
            return CLOSED
        return NEED_DATA

    def _request_done(self, trailers: Fields) -> EndOfMessage:
        self._their = _DONE
        self._expect = False
        self._settle()
        if self._scan >= 0:  # zttp ended a chunked body where the count did not
            self._lose_count()
        return EndOfMessage(trailers)

    def _request(self, event: zttp.Request) -> RequestHead:
        fields = event.headers
        headers = fields.to_list(lowercase_names=True)  # type: ignore[union-attr]
        method = event.method
        target = event.target
        version = event.http_version
        # The fields that matter are looked up by zttp (in C), not in a loop here.
        get = fields.get  # type: ignore[union-attr]
        getall = fields.getall  # type: ignore[union-attr]
        # What h11 refuses while reading a head and zttp lets through.
        if not target.isascii():
            line = bytearray(b"%s %s HTTP/%s" % (method, target, version))
            raise self._h11_refused(f"illegal request line: {line!r}")
        coding = get(b"transfer-encoding")
        if coding is not None:  # h11 reads them in order: the first must be "chunked"
            if coding.lower() != b"chunked":
                raise self._h11_refused("Only Transfer-Encoding: chunked is supported")
            if len(getall(b"transfer-encoding")) > 1:
                raise self._h11_refused("multiple Transfer-Encoding headers")
            if coding != b"chunked":  # h11 keeps the value lowercase
                headers = [(n, b"chunked" if n == b"transfer-encoding" else v) for n, v in headers]
        if version != b"1.1" and len(getall(b"host")) > 1:  # zttp checks only 1.1's
            raise self._h11_refused("Found multiple Host: headers")
        length = get(b"content-length")
        if length is not None and len(getall(b"content-length")) > 1:
            headers = _one_length(headers)  # identical (zttp refuses others): h11 keeps one
        # The head is h11's too: the state it would be in.
        self._their = _SEND_BODY
        self._our = _SEND_RESPONSE
        self._version = version
        self._method = method
        if version < b"1.1" or (get(b"connection") is not None and _closes(getall(b"connection"))):
            self._keep_alive = False
        if get(b"upgrade") is not None:
            self._proposal = any(_tokens(v) for v in getall(b"upgrade"))
        self._expect = event.expect_continue and version >= b"1.1"
        # hyperpy's rules, in ``_policy``'s order (the framing conflict never gets
        # here: zttp refuses it).
        limits = self._limits
        if not version.startswith(b"1."):
            raise RequestRejected(505, "only HTTP/1.x is served here")
        if len(target) > limits.max_target_bytes:
            raise RequestRejected(414, "request target too long")
        if len(headers) > limits.max_header_count:
            raise RequestRejected(431, "too many header fields")
        head_end = self._head_end()
        # The size ``h1`` measures (fields without their whitespace) is at most the
        # raw head's plus one byte a field: summed only when that could matter.
        if head_end < 0 or head_end - self._start + len(headers) > limits.max_head_bytes:
            size = len(method) + len(target) + 12
            for name, value in headers:
                size += len(name) + len(value) + 4
            if size > limits.max_head_bytes:
                raise RequestRejected(431, "request head too large")
        if method == b"CONNECT":
            raise RequestRejected(501, "CONNECT (tunnelling) is not supported here")
        request = RequestHead(method, target, headers, version)
        if target[:1] != b"/":
            request = origin_form(request)
        self._head = method == b"HEAD"
        end_stream = event.end_stream
        self._synth_end = end_stream
        if head_end >= 0:
            self._count_body(head_end, end_stream, coding is not None, length)
        return request

    def _h11_refused(self, detail: str) -> RequestRejected:
        self._their = _ERROR
        self._settle()
        return RequestRejected(400, detail)

    def _refused(self, message: str) -> RequestRejected:
        """The rejection of what zttp refused: h11's and hyperpy's verdict on the head's
        bytes (so the status and detail are theirs), else a 400 (431 for zttp's own
        size limits) for the few heads h11 would take and zttp does not."""
        head_phase = self._their == _IDLE
        self._their = _ERROR
        self._settle()
        if not head_phase or self._lost:
            if self._eof and message == "unexpected end of data":  # h11's wording
                message = "peer closed connection without sending complete message body"
                length = self._length
                if length < 0:
                    message += ": incomplete chunked read"
                elif not self._lost:
                    received = self._total - (self._end - length)
                    message += f" (received {received} bytes, expected {length})"
            return RequestRejected(400, message)  # a broken body
        raw = b"".join(self._raw)[self._start - self._raw_at :]
        limits = self._limits
        verdict = _h11_head(raw)
        if isinstance(verdict, RequestHead):
            # h11 takes the head and hyperpy judges it: h11's state is that of an
            # accepted request (it decides the error response's framing fields).
            self._accepted(verdict)
        elif verdict is None:  # zttp refused an incomplete head h11 would still wait on
            if self._eof:
                return RequestRejected(400, "peer unexpectedly closed connection")
            if b"\n" in raw:  # judge the complete lines as if the head ended there
                verdict = _h11_head(raw[: raw.rfind(b"\n") + 1] + b"\r\n")
            elif len(raw) > limits.max_target_bytes and b" " in raw[:32]:
                return RequestRejected(414, "request target too long")
        if isinstance(verdict, RequestHead):
            verdict = _policy(limits, verdict)
        if isinstance(verdict, RequestRejected):
            return verdict
        return RequestRejected(431 if "size limit" in message else 400, message)

    def _accepted(self, request: RequestHead) -> None:
        """The state h11 is in once it has read ``request``'s head."""
        version = request.http_version
        close = proposal = expect = False
        for name, value in request.headers:
            if name == b"connection":
                close = close or b"close" in _tokens(value)
            elif name == b"upgrade":
                proposal = proposal or bool(_tokens(value))
            elif name == b"expect":
                expect = expect or b"100-continue" in _tokens(value)
        self._their = _SEND_BODY
        self._our = _SEND_RESPONSE
        self._version = version
        self._method = request.method
        self._proposal = proposal
        if close or version < b"1.1":
            self._keep_alive = False
        self._expect = expect and version >= b"1.1"

    # -- where requests end in the byte stream ----------------------------------------

    def _buffer_from(self, offset: int) -> tuple[bytes, int]:
        """One buffer holding the received bytes from ``offset`` on, and its offset."""
        raw = self._raw
        last = raw[-1]
        last_at = self._total - len(last)
        if offset >= last_at:
            return last, last_at
        joined = b"".join(raw)
        self._raw = [joined]
        return joined, self._raw_at

    def _lose_count(self) -> None:
        """Give up counting (zttp and the count disagree, which should not happen):
        nothing is kept, and there is no trailing data to hand over."""
        self._lost = True
        self._scan = -1
        self._need = _NEVER
        self._raw = []

    def _drop_before(self, offset: int) -> None:
        """Forget the buffers wholly before ``offset``."""
        self._need = offset
        raw = self._raw
        at = self._raw_at
        while raw and at + len(raw[0]) <= offset:
            at += len(raw.pop(0))
        self._raw_at = at

    def _head_end(self) -> int:
        """Where the head just parsed ends (strict CRLF: at its first blank line);
        -1 once the count is lost."""
        if self._lost:
            return -1
        raw = self._raw
        if len(raw) == 1:
            buffer, at = raw[0], self._raw_at
        else:
            buffer, at = self._buffer_from(self._start)
        found = buffer.find(b"\r\n\r\n", self._start - at)
        if found < 0:
            self._lose_count()
            return -1
        return at + found + 4

    def _count_body(
        self, head_end: int, end_stream: bool, chunked: bool, length: bytes | None
    ) -> None:
        if chunked:
            self._length = -1
            self._scan = head_end
            self._trailer = False
            self._drop_before(head_end)
            self._scan_chunks()
            return
        self._length = 0 if end_stream or length is None else int(length)
        self._end = end = head_end + self._length
        raw = self._raw
        if end >= self._total:  # the usual case: nothing received past this request
            raw.clear()
            self._need = end
        else:
            self._drop_before(end)

    def _scan_chunks(self) -> None:
        """Follow a chunked body's framing through the bytes received so far."""
        pos = self._scan
        total = self._total
        while pos < total:
            buffer, at = self._buffer_from(pos)
            start = pos - at
            line_end = buffer.find(b"\r\n", start)
            if line_end < 0:
                break  # a framing line still arriving
            after = at + line_end + 2
            if self._trailer:
                if line_end == start:  # the blank line that ends the message
                    self._scan = -1
                    self._end = after
                    self._drop_before(after)
                    return
                pos = after
                continue
            try:
                size = int(buffer[start:line_end].split(b";", 1)[0].rstrip(b" \t"), 16)
            except ValueError:  # zttp refuses it as well: the connection ends
                self._lose_count()
                return
            if size:
                pos = after + size + 2  # the data and the CRLF after it
            else:
                self._trailer = True
                pos = after
        self._scan = pos
        self._drop_before(pos)

    # -- properties -------------------------------------------------------------------

    @property
    def expects_100_continue(self) -> bool:
        return self._expect

    @property
    def answering_head(self) -> bool:
        """The response being made answers a HEAD request: it carries no body, and
        so no trailers either."""
        return self._head

    @property
    def http_version(self) -> str:
        version = self._version
        return version.decode() if version else "1.1"

    @property
    def can_respond(self) -> bool:
        """True while a response may still be started (nothing sent yet)."""
        return self._our <= _SEND_RESPONSE

    @property
    def keep_alive(self) -> bool:
        """The connection may serve another request after this one."""
        return self._our != _MUST_CLOSE and not self._closing

    @property
    def request_complete(self) -> bool:
        return self._their == _DONE

    @property
    def peer_closed(self) -> bool:
        return self._their == _CLOSED

    def close_after_response(self) -> None:
        """Shutting down: the next response carries ``Connection: close``."""
        self._closing = True

    # -- sending ----------------------------------------------------------------------

    def continue_100(self) -> bytes:
        if self._our != _SEND_RESPONSE:
            raise LocalProtocolError("can't send 100 Continue: no request awaits an answer")
        self._expect = False
        return _CONTINUE_100

    def start_response(
        self,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        length: int | None,
        reason: bytes = b"",
        now: float | None = None,
    ) -> bytes:
        """Response head; adds Date, Server, framing and (when closing) Connection: close."""
        if self._our > _SEND_RESPONSE:
            raise LocalProtocolError("can't send a response: one was already started")
        if not 200 <= status < 1000:
            raise LocalProtocolError(
                f"Response status_code should be in range [200, 1000), not {status}"
            )
        fields = [(n, v) for n, v in headers if n not in CONNECTION_SPECIFIC]
        names = {n for n, _ in fields}
        if b"date" not in names:
            fields.append((b"date", http_date(now)))
        if b"server" not in names:
            fields.append((b"server", SERVER_HEADER))
        given = None  # a Content-Length the caller set
        if b"content-length" in names:
            given = next(v for n, v in fields if n == b"content-length")
        version = self._version
        # 204 and 304 carry no body and so no framing fields (RFC 9110 §8.6).
        bodyless = status in (204, 304)
        if not bodyless:
            if length is not None:
                if given is None:  # ``body_framing``'s rule, without its search
                    fields.append((b"content-length", b"%d" % length))
            else:
                # HTTP/1.0 peers cannot parse chunked: no length means close-delimited.
                fields = body_framing(fields, length, allow_chunked=version != b"1.0")
        chunked = not bodyless and given is None and length is None and version != b"1.0"
        self._chunked = chunked
        if self._closing:
            fields.append((b"connection", b"close"))
        # The framing fields as h11 finishes them before sending: a body of unknown
        # length is chunked for HTTP/1.1 peers, else delimited by closing.
        close = until_close = False
        if not bodyless and given is None and length is None:
            fields = [f for f in fields if f[0] != b"transfer-encoding"]
            if version is None or version < b"1.1":
                until_close = True
                close = self._method != b"HEAD"
            else:
                fields.append((b"Transfer-Encoding", b"chunked"))
        if close or not self._keep_alive:
            fields = [f for f in fields if f[0] != b"connection"]
            fields.append((b"Connection", b"close"))
        head = _response_head(status, fields, reason)
        if self._closing or close:
            self._keep_alive = False
        if bodyless or self._method == b"HEAD":
            self._left = 0
        elif given is not None:
            self._left = int(given)
        elif length is not None:
            self._left = length
        else:
            self._left = _UNTIL_CLOSE if until_close else _CHUNKED
        self._our = _SEND_BODY
        self._expect = False
        self._proposal = False  # a final response refuses any switch
        self._settle()
        return head

    def body(self, data: bytes) -> list[bytes]:
        """The framed pieces of a response-body chunk, small ones joined (HEAD
        responses yield none)."""
        if self._our != _SEND_BODY:
            raise LocalProtocolError("can't send body data: no response under way")
        try:
            self._left, pieces = _body_piece(self._left, data)
        except LocalProtocolError:
            self._our = _ERROR
            self._settle()
            raise
        return coalesce(pieces)

    @property
    def trailers_allowed(self) -> bool:
        """Trailers need chunked framing, which HTTP/1.0 peers cannot read."""
        return self._version != b"1.0"

    def end_response(self, trailers: Fields | None = None) -> bytes:
        """End of the response body, with trailers if its framing can carry them."""
        if self._our != _SEND_BODY:
            raise LocalProtocolError("can't end the response: none is under way")
        fields = trailers if trailers and self._chunked and not self._head else []
        try:
            end = _body_end(self._left, fields)
        except LocalProtocolError:
            self._our = _ERROR
            self._settle()
            raise
        self._our = _DONE
        self._settle()
        return end

    def switch_protocols(self, fields: Sequence[tuple[bytes, bytes]] = H2C_UPGRADE) -> bytes:
        """The 101 response that switches protocols (h2c by default; a WebSocket's
        accept fields otherwise)."""
        if self._our != _SEND_RESPONSE or not self._proposal:
            raise LocalProtocolError(
                "Received server _SWITCH_UPGRADE event without a pending proposal"
            )
        head = _response_head(101, list(fields), b"Switching Protocols")
        self._our = _SWITCHED
        self._expect = False
        self._settle()
        return head

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after the request that switched protocols."""
        end = self._end
        if end < 0 or self._lost or self._total <= end:
            return b""
        buffer, at = self._buffer_from(end)
        return buffer[end - at :]

    def try_reuse(self) -> bool:
        """After a complete exchange: reset for the next request, if keep-alive allows."""
        if self._our != _DONE or self._their != _DONE or self._closing:
            return False
        self._conn.start_next_cycle()
        self._our = self._their = _IDLE
        self._proposal = False
        self._method = None  # as h11 forgets it
        self._head = False  # the next request is not known to be a HEAD yet
        if not self._lost:
            self._start = self._end
            self._end = -1
            self._drop_before(self._start)
        return True


def _response_head(status: int, fields: list[tuple[bytes, bytes]], reason: bytes) -> bytes:
    """A response head, validated and serialized by zttp, with ``reason`` in its status
    line (zttp writes a standard reason of its own, and stops at 599)."""
    serializer = zttp.Connection(zttp.SERVER)
    try:
        serializer.send_response(status if status < 600 else 599, fields)
    except (zttp.ProtocolError, ValueError) as exc:
        raise LocalProtocolError(str(exc)) from exc
    head = serializer.data_to_send()
    line_end = head.index(b"\r\n")
    if status >= 600 or head[13:line_end] != reason:
        if _REASON_RE.fullmatch(reason) is None:
            raise LocalProtocolError(f"Illegal reason phrase {reason!r}")
        head = b"HTTP/1.1 %d %s%s" % (status, reason, head[line_end:])
    return head


if TYPE_CHECKING:
    # mypy checks here that the classes have the interface the IO layers call.

    def _client_conforms(client: H1Client) -> H1ClientEngine:
        return client

    def _server_conforms(server: H1Server) -> H1ServerEngine:
        return server
