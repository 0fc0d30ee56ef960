"""Where an HTTP/1.1 body ends: Content-Length, chunked or until close, found
without decoding it, so a keep-alive connection's next message can be found."""

from __future__ import annotations

import re

from branchyard.core.errors import ProxyError

MAX_LINE = 8 * 1024
_HEX = re.compile(rb"^[0-9A-Fa-f]{1,16}$")


class BadMessageError(ProxyError):
    """A request or response the proxy cannot frame; answered with 400/502."""

    code = "proxy_bad_message"


class LengthFramer:
    """A body of known length."""

    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        self.remaining = length

    def consume(self, data: bytes, pos: int) -> int:
        """Index in ``data`` where the body ends, or -1 if it goes on past ``data``."""
        available = len(data) - pos
        if available < self.remaining:
            self.remaining -= available
            return -1
        end = pos + self.remaining
        self.remaining = 0
        return end


class UntilCloseFramer:
    """A response body that ends when the server closes the connection."""

    __slots__ = ()

    def consume(self, data: bytes, pos: int) -> int:
        return -1


class ChunkedFramer:
    """Finds the end of a chunked body (sizes, data, trailers) without decoding it."""

    __slots__ = ("line", "remaining", "state")
    _SIZE, _DATA, _TRAILER = 0, 1, 2

    def __init__(self) -> None:
        self.state = self._SIZE
        self.remaining = 0
        self.line = b""

    def consume(self, data: bytes, pos: int) -> int:
        end = len(data)
        while pos < end:
            if self.state == self._DATA:
                take = min(self.remaining, end - pos)
                pos += take
                self.remaining -= take
                if not self.remaining:
                    self.state = self._SIZE
                continue
            nl = data.find(b"\n", pos)
            if nl < 0:
                self.line += data[pos:]
                if len(self.line) > MAX_LINE:
                    raise BadMessageError("chunk size line too long")
                return -1
            line, self.line = self.line + data[pos:nl], b""
            pos = nl + 1
            if self.state == self._SIZE:
                self._start_chunk(line)
            elif not line.strip():
                return pos
        return -1

    def _start_chunk(self, line: bytes) -> None:
        size_text = line.split(b";", 1)[0].strip()
        if not _HEX.match(size_text):
            raise BadMessageError(f"invalid chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        if size:
            self.state, self.remaining = self._DATA, size + 2  # data + CRLF
        else:
            self.state = self._TRAILER


BodyFramer = LengthFramer | ChunkedFramer | UntilCloseFramer
