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
    """Moves exactly ``length`` bytes from ``src`` to ``dst``, then calls ``done(ok)``.

    Both directions run at once: the source is read into the pipe while it has room
    even when the destination is full, so the sender never waits on the receiver
    more than the pipe's size.
    """

    __slots__ = ("_done", "_dst", "_in_pipe", "_loop", "_pipe_r", "_pipe_w", "_reading",
                 "_src", "_src_transport", "_to_read", "_writing")

    def __init__(self, loop: asyncio.AbstractEventLoop, src: asyncio.Transport,
                 dst: asyncio.Transport, length: int, done: Callable[[bool], None]) -> None:
        self._loop = loop
        self._src_transport = src
        self._to_read = length
        self._in_pipe = 0
        self._done: Callable[[bool], None] | None = done
        self._reading = self._writing = False
        src.pause_reading()
        self._src = os.dup(src.get_extra_info("socket").fileno())
        self._dst = os.dup(dst.get_extra_info("socket").fileno())
        self._pipe_r, self._pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._pipe_w, _F_SETPIPE_SZ, PIPE_SIZE)
        self._want_reading(True)

    def _want_reading(self, on: bool) -> None:
        if on != self._reading:
            self._reading = on
            if on:
                self._loop.add_reader(self._src, self._readable)
            else:
                self._loop.remove_reader(self._src)

    def _want_writing(self, on: bool) -> None:
        if on != self._writing:
            self._writing = on
            if on:
                self._loop.add_writer(self._dst, self._writable)
            else:
                self._loop.remove_writer(self._dst)

    def _readable(self) -> None:
        for _ in range(MAX_ROUNDS):  # a few rounds per wake-up, fair to other clients
            room = min(self._to_read, PIPE_SIZE - self._in_pipe)
            if room <= 0:
                self._want_reading(False)
                return
            try:
                moved = os.splice(self._src, self._pipe_w, room, flags=_FLAGS)
            except BlockingIOError:  # nothing to read, or the pipe is full
                if self._writing:
                    self._want_reading(False)  # resumed once the pipe drains
                return
            except OSError:
                self._finish(False)
                return
            if not moved:  # the sender closed before the body was complete
                self._finish(False)
                return
            self._to_read -= moved
            self._in_pipe += moved
            if not self._drain() or self._src < 0:
                return

    def _writable(self) -> None:
        if self._drain() and self._src >= 0:
            self._want_writing(False)
        if self._src >= 0 and self._to_read and self._in_pipe < PIPE_SIZE:
            self._want_reading(True)

    def _drain(self) -> bool:
        """Empty the pipe into the destination; False if it is full (writer armed)."""
        while self._in_pipe:
            try:
                moved = os.splice(self._pipe_r, self._dst, self._in_pipe, flags=_FLAGS)
            except BlockingIOError:
                self._want_writing(True)
                return False
            except OSError:
                self._finish(False)
                return False
            self._in_pipe -= moved
        if not self._to_read:
            self._finish(True)
        return True

    def cancel(self) -> None:
        """Stop at once (one end went away); ``done`` is not called."""
        self._done = None
        self._finish(False)

    def _finish(self, ok: bool) -> None:
        if self._src < 0:
            return
        self._want_reading(False)
        self._want_writing(False)
        for fd in (self._src, self._dst, self._pipe_r, self._pipe_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._src = self._dst = self._pipe_r = self._pipe_w = -1
        done, self._done = self._done, None
        if ok and not self._src_transport.is_closing():
            self._src_transport.resume_reading()
        if done is not None:
            done(ok)
