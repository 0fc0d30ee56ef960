"""Reading a hook's JSON payload from stdin the way agent apps send it: one JSON
object, possibly with stdin left open, so it is parsed as soon as it is complete
rather than at EOF. Never prompts."""

from __future__ import annotations

import json
import os
import select
import time
from typing import Any

from branchyard.core.errors import UsageError

TIMEOUT = 30.0  # seconds to wait for the payload to arrive


def read_object(fd: int = 0, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The first JSON object on ``fd``; a clear error if none arrives in time."""
    if os.isatty(fd):
        raise UsageError("this hook reads the app's JSON payload on stdin, and stdin is "
                         "a terminal", hint="the agent app runs this command; to try it, "
                         "pipe a payload: echo '{\"name\": \"x\"}' | branchyard agents hook …")
    buf, deadline = b"", time.monotonic() + timeout
    decoder = json.JSONDecoder()
    while True:
        parsed = _complete(decoder, buf)
        if parsed is not None:
            return parsed
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            raise UsageError("no complete JSON object arrived on stdin"
                             + ("" if ready else f" within {timeout:.0f}s")
                             + (f" (got {_shown(buf)})" if buf.strip() else ""),
                             hint="the hook expects the app's payload, e.g. "
                                  '{"name": "feature-x", "cwd": "/path/to/repo"}')
        buf += chunk


def _shown(buf: bytes) -> str:
    return repr(buf[:80].decode("utf-8", errors="replace").strip())


def _complete(decoder: json.JSONDecoder, buf: bytes) -> dict[str, Any] | None:
    text = buf.decode("utf-8", errors="replace").lstrip()
    if not text:
        return None
    try:
        value, _ = decoder.raw_decode(text)
    except ValueError as err:
        if _open(text):
            return None  # cut off mid-object: wait for the rest
        raise UsageError(f"the payload on stdin is not JSON: {err}",
                         hint="the hook expects one JSON object from the agent app") from err
    if not isinstance(value, dict):
        raise UsageError("the payload on stdin is not a JSON object",
                         hint="the hook expects one JSON object from the agent app")
    return value


def _open(text: str) -> bool:
    """Whether ``text`` ends inside an object, array or string."""
    depth, in_str, escape = 0, False, False
    for ch in text:
        if escape:
            escape = False
        elif in_str:
            escape, in_str = ch == "\\", ch != '"'
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
    return depth > 0 or in_str
