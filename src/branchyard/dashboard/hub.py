"""Who is watching, and telling them when something changed.

One task runs while at least one page is open: every ``WATCH_INTERVAL`` it
stats the files a change shows in (each ledger, the services' records, git's
index and HEAD log of every worktree) and reads the yard again when one moved
— or every ``FULL_REFRESH`` seconds for what leaves no trace in those (an edited
file, a database growing). A page gets an event only when its HTML changed.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from branchyard.core.paths import Signature, signature
from branchyard.dashboard.render import log_line, yard_html
from branchyard.dashboard.services_view import LogFollower, watched_files

if TYPE_CHECKING:
    from branchyard.dashboard.app import Dashboard, Scope
    from branchyard.dashboard.model import Yard

WATCH_INTERVAL = 0.25
FULL_REFRESH = 5.0
KEEPALIVE = 15.0
MAX_PENDING = 1 << 20  # bytes queued to a page that does not read: it is cut off


@dataclass(eq=False)
class Stream:
    """One open event stream: the yard of a scope, or one service's log."""

    scope: Scope
    send: Callable[[bytes], bool]  # False: the connection is gone or stuck
    follower: LogFollower | None = None
    last: str = field(default="")
    after: float = 0.0  # log lines up to this time were sent already (first poll)


def event(name: str, data: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {name}\n{lines}\n".encode()


class Hub:
    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.streams: set[Stream] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, stream: Stream) -> None:
        self.streams.add(stream)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watch())

    def remove(self, stream: Stream) -> None:
        self.streams.discard(stream)
        if stream.follower is not None:
            stream.follower.close()
        if not self.streams and self._task is not None:
            self._task.cancel()
            self._task = None

    def push_yard(self, yard: Yard) -> None:
        rendered: dict[Scope, str] = {}
        for stream in [s for s in self.streams if s.follower is None]:
            html = rendered.get(stream.scope)
            if html is None:
                html = rendered[stream.scope] = yard_html(stream.scope.filter(yard),
                                                          stream.scope.base, "")
            if html != stream.last:
                stream.last = html
                self._send(stream, event("yard", html))

    def _send(self, stream: Stream, data: bytes) -> None:
        if not stream.send(data):
            self.remove(stream)

    async def _watch(self) -> None:
        last_sig: Signature = ()
        next_full = next_ping = time.monotonic() + FULL_REFRESH
        while self.streams:
            await asyncio.sleep(WATCH_INTERVAL)
            await self._follow_logs()
            now = time.monotonic()
            yard_streams = any(s.follower is None for s in self.streams)
            if yard_streams:
                sig = await asyncio.to_thread(
                    lambda: signature(watched(self.dashboard.yard,
                                              str(self.dashboard.registry_file))))
                if sig != last_sig or now >= next_full:
                    last_sig, next_full = sig, now + FULL_REFRESH
                    self.push_yard(await self.dashboard.current(max_age=0.0))
            if now >= next_ping:
                next_ping = now + KEEPALIVE
                for stream in list(self.streams):
                    self._send(stream, b": ping\n\n")

    async def _follow_logs(self) -> None:
        followers = [s for s in self.streams if s.follower is not None]
        if not followers:
            return
        batches = await asyncio.to_thread(
            lambda: [(s, s.follower.poll() if s.follower else []) for s in followers])
        for stream, lines in batches:
            # the first poll repeats what the stream began with; later ones are all new
            fresh = [x for x in lines if x.time > stream.after]
            stream.after = 0.0
            if fresh and stream in self.streams:
                self._send(stream, event("line", "".join(log_line(x) for x in fresh)))



def watched(yard: Yard | None, registry_file: str) -> list[str]:
    """The files whose change means the yard may look different."""
    files = [registry_file]
    for repo in yard.repos if yard else ():
        common = repo.common_dir
        files += [os.path.join(common, "branchyard", "ledger.json"),
                  os.path.join(common, "index"), os.path.join(common, "logs", "HEAD")]
        for wt in repo.worktrees:
            files += watched_files(wt.path)
        try:
            linked = [e.path for e in os.scandir(os.path.join(common, "worktrees"))]
        except OSError:
            linked = []
        files += [os.path.join(d, name) for d in linked for name in ("index", "logs/HEAD")]
    return files


