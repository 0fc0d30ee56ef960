"""What the proxy changes in the heads it passes on: X-Forwarded-*, its loop
mark and the origin form on the way to the app; ``Connection: close`` on the way
back when the client asked for it."""

from __future__ import annotations

from branchyard.proxy.http import FORWARDED, LOOP_HEADER, Request, split_absolute

_FORWARDED_DROPS = frozenset(FORWARDED)
_CLOSE_DROPS = frozenset((*FORWARDED, b"connection"))
_LOOP_DROPS = frozenset((LOOP_HEADER,))
_HOST_DROPS = frozenset((b"host",))


def _without(head: bytes, names: frozenset[bytes] | tuple[bytes, ...]) -> bytes:
    """``head`` (ending in CRLF CRLF) without the header lines named ``names``."""
    kept = [ln for ln in head[:-4].split(b"\r\n")
            if ln.partition(b":")[0].strip().lower() not in names]
    return b"\r\n".join(kept) + b"\r\n\r\n"


def forwarded_head(req: Request, client_ip: bytes, proto: bytes, mark: bytes) -> bytes:
    """The request head with X-Forwarded-* and the loop mark added; Host kept.

    A client's ``Connection: close`` is about its own connection: it is not passed
    on, so the proxy's connection to the app stays open for the next client. A
    loop mark the client sent is dropped (only this proxy's own reaches the app),
    and an absolute-form target goes on in origin form with the Host it named.
    """
    head = req.head
    drops: frozenset[bytes] = _CLOSE_DROPS if req.close else _FORWARDED_DROPS
    if req.loop_marks:
        drops |= _LOOP_DROPS
    if req.absolute:
        head = _origin_form(req, head, drops | _HOST_DROPS)
    elif req.close or req.has_forwarded or req.loop_marks:
        head = _without(head, drops)
    chain = req.forwarded_for + b", " + client_ip if req.forwarded_for else client_ip
    host = req.host.encode("latin-1")
    return b"".join((head[:-2], b"X-Forwarded-For: ", chain, b"\r\nX-Forwarded-Proto: ",
                     proto, b"\r\nX-Forwarded-Host: ", host, b"\r\n", mark, b"\r\n"))


def _origin_form(req: Request, head: bytes, drops: frozenset[bytes]) -> bytes:
    """``GET http://a.localhost/x HTTP/1.1`` → ``GET /x HTTP/1.1`` and ``Host: a.localhost``."""
    kept = _without(head, drops)
    path = split_absolute(req.target)[1]
    return b"".join((req.method, b" ", path, b" ", req.version, b"\r\nHost: ",
                     req.host.encode("latin-1"), kept[kept.find(b"\r\n"):]))


def closing_head(head: bytes) -> bytes:
    """A response head (ending in CRLF CRLF) that tells the client the connection closes."""
    return _without(head, (b"connection", b"keep-alive"))[:-2] + b"Connection: close\r\n\r\n"
