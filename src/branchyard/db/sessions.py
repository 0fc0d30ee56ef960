"""One connection per server for the length of a command.

`up` asks its server a dozen small things (does the database exist, the snapshot,
main's write counter, a spare of the pool, the owner's comment), and each
:func:`postgres.connect` opened a session of its own: a TCP connection, the
password exchange and a new backend process each time. Inside :func:`sharing`,
the connection to a server's admin URL (one :func:`share` named) is opened once
and used by every :func:`postgres.connect` to that URL until the block ends.

Only admin URLs are shared: a session kept open on a database would stand in
the way of what is done to that database (a clone from it, a rename, a drop).
A connection that broke, that the server ended, or that a statement interrupted
mid-way left busy is closed, and the next use opens a new one. Threads never share: each starts with
no sharing of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    Opener = Callable[[], psycopg.Connection[Any]]


@dataclass
class _Shared:
    urls: set[str] = field(default_factory=set)
    open: dict[str, psycopg.Connection[Any]] = field(default_factory=dict)


_CURRENT: ContextVar[_Shared | None] = ContextVar("branchyard_shared_connections",
                                                   default=None)


@contextmanager
def sharing() -> Iterator[None]:
    """Share admin connections for the block (nested blocks share the outer one's);
    they are closed when it ends."""
    if _CURRENT.get() is not None:
        yield
        return
    shared = _Shared()
    token = _CURRENT.set(shared)
    try:
        yield
    finally:
        _CURRENT.reset(token)
        for conn in shared.open.values():
            conn.close()


def share(url: str) -> None:
    """Let connections to the admin URL ``url`` be shared (outside :func:`sharing`:
    nothing)."""
    shared = _CURRENT.get()
    if shared is not None:
        shared.urls.add(url)


def is_shared(url: str) -> bool:
    shared = _CURRENT.get()
    return shared is not None and url in shared.urls


@contextmanager
def reused(url: str, opener: Opener) -> Iterator[psycopg.Connection[Any]]:
    """The shared connection to ``url``, opened by ``opener`` the first time (or
    when the last one broke); left open for the next use."""
    from psycopg import pq

    shared = _CURRENT.get()
    assert shared is not None, "reused() outside sharing()"
    conn = shared.open.get(url)
    if conn is not None and not _usable(conn):
        conn.close()
        conn = None
    if conn is None:
        conn = shared.open[url] = opener()
    try:
        yield conn
    except BaseException:
        if conn.broken or conn.info.transaction_status != pq.TransactionStatus.IDLE:
            shared.open.pop(url, None)
            conn.close()
        raise


def _usable(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle shared connection still works: not closed, and the server
    has sent nothing since its last answer (a server that ended the session, say
    on a restart, writes why and closes the socket, which is then readable)."""
    import select

    if conn.closed or conn.broken:
        return False
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
