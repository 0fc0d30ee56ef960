"""Just enough HTTP/1.1 head parsing to route a request and frame its messages.

Only the few headers the proxy acts on are read (Host, framing, Connection,
Upgrade, X-Forwarded-*, the loop mark); the head is forwarded as it came, and
bodies are framed, never decoded (``proxy/framing.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from branchyard.proxy.framing import (
    MAX_LINE,
    BadMessageError,
    BodyFramer,
    ChunkedFramer,
    LengthFramer,
    UntilCloseFramer,
)

MAX_HEAD = 64 * 1024
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) (HTTP/1\.[01])")
_LINE_BAD = re.compile(rb"[^\x20-\x7e]")  # what a request line cannot hold
_CTL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # CR and LF are checked apart
NO_BODY_STATUS = (204, 304)


@dataclass(slots=True)
class Request:
    method: bytes
    target: bytes
    version: bytes
    host: str  # from the Host header, or from an absolute-form target
    head: bytes  # as received, ending in CRLF CRLF
    body: BodyFramer | None  # None: no body
    keep_alive: bool
    close: bool  # HTTP/1.1 with ``Connection: close``: meant for this hop, not the app's
    upgrade: bool
    absolute: bool  # an absolute-form target (``GET http://host/path``)
    loop_marks: tuple[bytes, ...]  # values of the loop-detection header
    forwarded_for: bytes  # an X-Forwarded-For the client sent, or b""
    has_forwarded: bool  # any X-Forwarded-* header present


@dataclass(slots=True)
class Response:
    status: int
    body: BodyFramer | None  # None: no body (or 1xx / 101)
    keep_alive: bool
    until_close: bool


# A CR not starting a line with a field name and a colon (a bare CR, obs-fold, a
# space before the colon, a line without one): searched for between the first and
# last CRLF.
_BAD_BREAK = re.compile(rb"\r(?!\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:)")
_XFF = re.compile(rb"\r\nx-forwarded-for:([^\r\n]*)", re.IGNORECASE)
_NOT_CTL = bytes(b for b in range(256) if b == 9 or 32 <= b != 127)
_NOT_CRLF = bytes(b for b in range(256) if b not in (10, 13))
LOOP_HEADER = b"x-branchyard-proxy"  # marks requests that went through a branchyard proxy
_WANTED = re.compile(rb"\r\n(host|content-length|transfer-encoding|connection|upgrade|"
                     rb"x-forwarded-for|x-forwarded-proto|x-forwarded-host|"
                     rb"x-branchyard-proxy):([^\r\n]*)")


class _Fields:
    """The few headers the proxy acts on, found in one scan of the (lowercased) block.

    Values come out lowercased: every one of them is case-insensitive (host names,
    tokens, digits, addresses).
    """

    __slots__ = ("found",)

    def __init__(self, head: bytes, start: int, *, strict: bool = False) -> None:
        # the control characters of a good head are its CRLFs and nothing else (strict:
        # requests; a response is only held to its line breaks)
        controls = head.translate(None, _NOT_CTL if strict else _NOT_CRLF)
        if controls != b"\r\n" * (len(controls) >> 1):
            raise BadMessageError(_control_error(head, strict))
        bad = _BAD_BREAK.search(head, start - 2, len(head) - 4)
        if bad is not None:
            at = bad.start() + 2
            if head[at - 1:at] != b"\n":
                raise BadMessageError("bare CR or LF in the message head")
            line = head[at:head.find(b"\r", at)]
            raise BadMessageError(f"malformed header line {line[:40]!r}")
        found: dict[bytes, list[bytes]] = {}
        for name, value in _WANTED.findall(head.lower(), start - 2):
            found.setdefault(name, []).append(value.strip(b" \t"))
        if b"x-forwarded-for" in found:  # an address list passed on as the client wrote it
            found[b"x-forwarded-for"] = [v.strip(b" \t") for v in _XFF.findall(head, start - 2)]
        self.found = found

    def has(self, name: bytes) -> bool:
        return name in self.found

    def values(self, name: bytes) -> list[bytes]:
        return self.found.get(name, [])


def _framing(fields: _Fields, *, strict: bool = False) -> tuple[int, bool]:
    """(content length or -1, chunked) from the headers, rejecting ambiguity.

    ``strict`` (requests): ``Transfer-Encoding`` must be exactly ``chunked``, as
    h11 and the app's own parser require; a response may say ``gzip, chunked``.
    """
    found = fields.found
    if b"content-length" not in found and b"transfer-encoding" not in found:
        return -1, False
    given = found.get(b"content-length", ())
    lengths = {given[0]} if len(given) == 1 and b"," not in given[0] else {
        v.strip(b" \t") for value in given for v in value.split(b",")}
    if fields.has(b"transfer-encoding"):
        if lengths:
            raise BadMessageError("both Content-Length and Transfer-Encoding")
        codings = fields.values(b"transfer-encoding")
        chunked = codings == [b"chunked"] if strict else \
            b",".join(codings).rstrip().endswith(b"chunked")
        if not chunked:
            raise BadMessageError("unsupported Transfer-Encoding (only chunked is)")
        return -1, True
    if not lengths:
        return -1, False
    if len(lengths) > 1:
        raise BadMessageError("conflicting Content-Length headers")
    value = next(iter(lengths))
    if not value.isdigit() or len(value) > 20:
        raise BadMessageError(f"invalid Content-Length {value[:20]!r}")
    return int(value), False


def _keep_alive(version: bytes, fields: _Fields) -> bool:
    if not fields.has(b"connection"):
        return version == b"HTTP/1.1"
    values = fields.values(b"connection")
    if len(values) == 1 and values[0] in (b"keep-alive", b"close"):  # the usual
        return values[0] == b"keep-alive"
    tokens = {t.strip() for v in values for t in v.split(b",")}
    if b"close" in tokens:
        return False
    return version == b"HTTP/1.1" or b"keep-alive" in tokens


def parse_request(head: bytes) -> Request:
    """Parse a request head (ending in CRLF CRLF); raise BadMessageError."""
    eol = head.find(b"\r\n")
    line = _REQUEST_LINE.fullmatch(head, 0, eol)
    if line is None:
        raise BadMessageError(_line_error(head[:eol]))
    method, target, version = line.groups()
    fields = _Fields(head, eol + 2, strict=True)
    hosts = fields.values(b"host")
    if len(hosts) > 1 or (not hosts and version == b"HTTP/1.1"):
        raise BadMessageError("missing or repeated Host header")
    host = hosts[0] if hosts else b""
    absolute = target[0] != 47 and target[:8].lower().startswith((b"http://", b"https://"))
    if absolute:
        host = split_absolute(target)[0]
    length, chunked = _framing(fields, strict=True)
    body: BodyFramer | None = ChunkedFramer() if chunked else (
        LengthFramer(length) if length > 0 else None)
    forwarded = not fields.found.keys().isdisjoint(FORWARDED)
    keep_alive = _keep_alive(version, fields)
    upgrade = fields.has(b"upgrade")
    return Request(
        method=method, target=target, version=version, host=host.decode("latin-1"),
        head=head, body=body, keep_alive=keep_alive,
        close=not keep_alive and version == b"HTTP/1.1" and not upgrade,
        upgrade=upgrade, absolute=absolute,
        loop_marks=tuple(fields.values(LOOP_HEADER)),
        forwarded_for=b", ".join(v for v in fields.values(b"x-forwarded-for") if v)
        if forwarded else b"",
        has_forwarded=forwarded,
    )


def check_partial_head(data: bytes, seen: int = 0) -> None:
    """Refuse at once a head that cannot become a request, before its end arrives.

    Random bytes, a TLS hello on the plain port or HTTP/0.9 (``GET /`` and a line
    end) would otherwise wait for the head deadline and get a 408. ``seen``: how
    many bytes of ``data`` an earlier call checked (a trickled head is scanned once).
    """
    eol = data.find(b"\n")
    since = max(seen - 1, 0)
    if eol < 0:
        bad = _LINE_BAD.search(data, since, MAX_LINE)
        if bad is not None and not (bad.start() == len(data) - 1 and data[-1:] == b"\r"):
            raise BadMessageError(_line_error(data[:60]))
        if len(data) > MAX_LINE:
            raise BadMessageError("request line too long")
        return
    if eol >= since:  # the request line is complete only now
        if data[eol - 1:eol] != b"\r" or eol == 0:
            raise BadMessageError("the request line ends in a bare LF (CRLF is needed)")
        if not _REQUEST_LINE.fullmatch(data, 0, eol - 1):
            raise BadMessageError(_line_error(data[:eol - 1]))
    bad = _CTL.search(data, max(eol + 1, since))
    if bad is not None:
        raise BadMessageError(f"control character {data[bad.start():bad.end()]!r} in a header")


def _control_error(head: bytes, strict: bool) -> str:
    bad = _CTL.search(head) if strict else None
    if bad is None:
        return "bare CR or LF in the message head"
    return f"control character {head[bad.start():bad.end()]!r} in the message head"


def _line_error(line: bytes) -> str:
    parts = line.split(b" ")
    if len(parts) == 3 and parts[2].startswith(b"HTTP/") and _TOKEN.match(parts[0]):
        return f"unsupported HTTP version {parts[2][:20]!r}"
    if len(parts) == 2 and _TOKEN.match(parts[0]):
        return "an HTTP/0.9 request (no HTTP version): HTTP/1.0 or 1.1 is needed"
    return f"malformed request line {line[:60]!r}"


def split_absolute(target: bytes) -> tuple[bytes, bytes]:
    """(host[:port], origin-form path) of an absolute-form target, lowercasing the host."""
    rest = target.partition(b"//")[2]
    cut = min((i for i in (rest.find(b"/"), rest.find(b"?"), rest.find(b"#")) if i >= 0),
              default=len(rest))
    authority, path = rest[:cut].rpartition(b"@")[2], rest[cut:].partition(b"#")[0]
    if not authority:
        raise BadMessageError(f"no host in the request target {target[:60]!r}")
    return authority.lower(), path if path.startswith(b"/") else b"/" + path


def parse_response(head: bytes, method: bytes) -> Response:
    """Parse a response head to the request ``method``; raise BadMessageError."""
    eol = head.find(b"\r\n")
    parts = head[:eol].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise BadMessageError(f"malformed status line {head[:min(eol, 60)]!r}")
    status = int(parts[1])
    fields = _Fields(head, eol + 2)
    keep = _keep_alive(parts[0], fields)
    if status < 200 or status in NO_BODY_STATUS or method == b"HEAD":
        return Response(status, None, keep, until_close=False)
    length, chunked = _framing(fields)
    if chunked:
        return Response(status, ChunkedFramer(), keep, until_close=False)
    if length >= 0:
        return Response(status, LengthFramer(length) if length else None, keep, False)
    return Response(status, UntilCloseFramer(), False, until_close=True)
