"""Zero-copy forwarding of large bodies on Linux: socket → pipe → socket with
``splice(2)``, so the bytes of a big download never enter Python.

Used for a plain-TCP body of known length from the moment it is recognised;
the transports' own reading is paused meanwhile and their file descriptors are
driven through duplicates, so asyncio (or uvloop) never sees half a body.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable

SPLICE_MIN = 1 << 20  # smaller bodies are cheaper through the normal path
PIPE_SIZE = 1 << 20
MAX_ROUNDS = 8
_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def can_splice(src: asyncio.Transport, dst: asyncio.Transport) -> bool:
    """Both ends plain TCP, nothing waiting in the destination's buffer, Linux."""
    return (hasattr(os, "splice")
            and src.get_extra_info("sslcontext") is None
            and dst.get_extra_info("sslcontext") is None
            and src.get_extra_info("socket") is not None
            and dst.get_extra_info("socket") is not None
            and dst.get_write_buffer_size() == 0)


class Splice:
    """Moves exactly ``length`` bytes from ``src`` to ``dst``, then calls ``done(ok)``."""

    __slots__ = ("_done", "_dst", "_in_pipe", "_loop", "_pipe_r", "_pipe_w", "_remaining",
                 "_src", "_src_transport", "_writing")

    def __init__(self, loop: asyncio.AbstractEventLoop, src: asyncio.Transport,
                 dst: asyncio.Transport, length: int, done: Callable[[bool], None]) -> None:
        self._loop = loop
        self._src_transport = src
        self._remaining = length
        self._in_pipe = 0
        self._done: Callable[[bool], None] | None = done
        self._writing = False
        src.pause_reading()
        self._src = os.dup(src.get_extra_info("socket").fileno())
        self._dst = os.dup(dst.get_extra_info("socket").fileno())
        self._pipe_r, self._pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._pipe_w, _F_SETPIPE_SZ, PIPE_SIZE)
        loop.add_reader(self._src, self._readable)

    def _readable(self) -> None:
        # keep moving while data is there (a few rounds, to stay fair to other clients)
        for _ in range(MAX_ROUNDS):
            try:
                moved = os.splice(self._src, self._pipe_w, min(self._remaining, PIPE_SIZE),
                                  flags=_FLAGS)
            except BlockingIOError:
                return
            except OSError:
                self._finish(False)
                return
            if not moved:  # the sender closed before the body was complete
                self._finish(False)
                return
            self._remaining -= moved
            self._in_pipe += moved
            self._drain()
            if self._writing or self._src < 0:
                return

    def _drain(self) -> None:
        while self._in_pipe:
            try:
                moved = os.splice(self._pipe_r, self._dst, self._in_pipe, flags=_FLAGS)
            except BlockingIOError:
                self._wait_writable()
                return
            except OSError:
                self._finish(False)
                return
            self._in_pipe -= moved
        if not self._remaining:
            self._finish(True)
        elif self._writing:
            self._writing = False
            self._loop.remove_writer(self._dst)
            self._loop.add_reader(self._src, self._readable)

    def _wait_writable(self) -> None:
        if not self._writing:
            self._writing = True
            self._loop.remove_reader(self._src)
            self._loop.add_writer(self._dst, self._drain)

    def cancel(self) -> None:
        """Stop at once (one end went away); ``done`` is not called."""
        self._done = None
        self._finish(False)

    def _finish(self, ok: bool) -> None:
        if self._src < 0:
            return
        self._loop.remove_reader(self._src)
        self._loop.remove_writer(self._dst)
        for fd in (self._src, self._dst, self._pipe_r, self._pipe_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._src = self._dst = self._pipe_r = self._pipe_w = -1
        done, self._done = self._done, None
        if ok and not self._src_transport.is_closing():
            self._src_transport.resume_reading()
        if done is not None:
            done(ok)
