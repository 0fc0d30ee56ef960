"""Each service's output on disk: JSON lines, rotated at a bounded size.

A service's log is ``logs/<service>.log`` plus up to ``files - 1`` older ones
(``.log.1`` is the newest of those). Each line is one JSON object: ``t`` (Unix
time), ``s`` (stream: ``out``, ``err`` or ``supervisor``), ``m`` (the text). The
files are mode 0600: a dev server may print secrets.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MAX_LINE = 16 * 1024  # longer output without a newline is cut into lines of this size


@dataclass(frozen=True)
class LogLine:
    time: float
    service: str
    stream: str  # out | err | supervisor
    text: str

    def to_json(self) -> dict[str, str]:
        return {"time": iso_time(self.time), "service": self.service, "stream": self.stream,
                "text": self.text}


def iso_time(when: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))
    return f"{stamp}.{int(when % 1 * 1000):03d}Z"


def log_file(directory: Path, service: str) -> Path:
    return directory / f"{service}.log"


def rotated(path: Path, files: int) -> list[Path]:
    """The files of one log, oldest first."""
    return [path.with_name(f"{path.name}.{i}") for i in range(files - 1, 0, -1)] + [path]


class LogWriter:
    """Appends lines to one service's log, rotating it past ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int, files: int) -> None:
        self.path, self.max_bytes, self.files = path, max_bytes, files
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fh = self._open()
        self._size = self._fh.tell()

    def _open(self) -> IO[str]:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8")

    def write(self, stream: str, text: str, when: float | None = None) -> None:
        record = json.dumps({"t": round(when or time.time(), 3), "s": stream, "m": text},
                            ensure_ascii=False) + "\n"
        size = len(record.encode())
        if self._size and self._size + size > self.max_bytes:
            self._rotate()
        self._fh.write(record)
        self._fh.flush()
        self._size += size

    def _rotate(self) -> None:
        self._fh.close()
        paths = rotated(self.path, self.files)  # oldest first
        paths[0].unlink(missing_ok=True)
        for older, newer in itertools.pairwise(paths):
            if newer.exists():
                os.replace(newer, older)
        self._fh, self._size = self._open(), 0

    def close(self) -> None:
        self._fh.close()


class LineSplitter:
    """Bytes from a pipe → complete lines (the rest is kept for the next chunk)."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[str]:
        data = self._rest + chunk
        *lines, self._rest = data.split(b"\n")
        while len(self._rest) > MAX_LINE:
            lines.append(self._rest[:MAX_LINE])
            self._rest = self._rest[MAX_LINE:]
        return [line.decode("utf-8", "replace").rstrip("\r") for line in lines]

    def flush(self) -> list[str]:
        rest, self._rest = self._rest, b""
        return [rest.decode("utf-8", "replace")] if rest else []


def _parse(service: str, raw: str) -> LogLine | None:
    try:
        data = json.loads(raw)
        return LogLine(float(data["t"]), service, str(data["s"]), str(data["m"]))
    except (ValueError, KeyError, TypeError):
        return None  # a line cut by a crash mid-write


def _lines_of(path: Path, service: str, files: int, since: float) -> Iterator[LogLine]:
    for part in rotated(path, files):
        try:
            with part.open(encoding="utf-8", errors="replace") as fh:
                for raw in fh:
                    line = _parse(service, raw)
                    if line is not None and line.time >= since:
                        yield line
        except FileNotFoundError:
            continue


def read_lines(directory: Path, services: Iterable[str], *, last: int | None = None,
               since: float = 0.0, files: int = 3) -> list[LogLine]:
    """The lines of ``services`` (merged by time), the last ``last`` of them."""
    streams = [_lines_of(log_file(directory, s), s, files, since) for s in services]
    merged = heapq.merge(*streams, key=lambda line: line.time)
    if last is None:
        return list(merged)
    return list(deque(merged, maxlen=last)) if last > 0 else []


class Follower:
    """New lines of one service's log as they are written, across rotations."""

    def __init__(self, path: Path, service: str) -> None:
        self.path, self.service = path, service
        self._fh: IO[str] | None = None
        self._rest = ""
        self._open(at_end=True)

    def _open(self, at_end: bool) -> None:
        try:
            self._fh = self.path.open(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            self._fh = None
            return
        if at_end:
            self._fh.seek(0, os.SEEK_END)

    def poll(self) -> list[LogLine]:
        if self._fh is None:
            self._open(at_end=False)
            if self._fh is None:
                return []
        out = self._drain()
        try:
            rotated_away = os.stat(self.path).st_ino != os.fstat(self._fh.fileno()).st_ino
        except FileNotFoundError:
            rotated_away = False
        if rotated_away:  # the rest of the old file is read above; go on with the new
            self._fh.close()
            self._open(at_end=False)
            out += self._drain()
        return out

    def _drain(self) -> list[LogLine]:
        assert self._fh is not None
        data = self._rest + self._fh.read()
        *complete, self._rest = data.split("\n")
        return [line for raw in complete if (line := _parse(self.service, raw)) is not None]

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
