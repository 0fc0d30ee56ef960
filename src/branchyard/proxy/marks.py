"""Loop marks: a random token on each request the proxy sends to an app, so one
that comes back in (an app that proxies to the proxy) is seen as a loop."""

from __future__ import annotations

import os

HEADER_LINE = b"X-Branchyard-Proxy: "
BLOCK = 256  # tokens drawn from the system at once, so a request costs no system call


class LoopMarks:
    """The marks of the requests now at an app. Any other value a client sends is
    forged or stale, and is dropped on the way (``proxy/rewrite.py``)."""

    __slots__ = ("_in_flight", "_unused")

    def __init__(self) -> None:
        self._in_flight: set[bytes] = set()
        self._unused: list[tuple[bytes, bytes]] = []  # (token, header line)

    def take(self) -> tuple[bytes, bytes]:
        """(token, header line) of a new mark, now in flight: 96 random bits."""
        unused = self._unused
        if not unused:
            block = os.urandom(12 * BLOCK).hex().encode()
            unused += [(t, HEADER_LINE + t + b"\r\n")
                       for t in (block[i:i + 24] for i in range(0, len(block), 24))]
        token, line = unused.pop()
        self._in_flight.add(token)
        return token, line

    def release(self, token: bytes) -> None:
        """The request marked ``token`` is back from its app (or gone)."""
        self._in_flight.discard(token)

    def looped(self, marks: tuple[bytes, ...]) -> bool:
        """Whether a request carries the mark of one this proxy has at an app."""
        return not self._in_flight.isdisjoint(marks)
