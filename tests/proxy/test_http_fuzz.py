"""The head parser against h11, a strict reference: the same verdict on every input.

The proxy is stricter than h11 in a few stated ways (``_STRICTER``); everything
else must agree: what is accepted, and for accepted heads the method, target,
version, Host and framing, and the head the app gets (parsed by h11 again).
"""

from __future__ import annotations

import os
import re

import h11
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from branchyard.proxy.framing import BadMessageError, ChunkedFramer, LengthFramer
from branchyard.proxy.http import LOOP_HEADER, Request, check_partial_head, parse_request
from branchyard.proxy.rewrite import forwarded_head

EXAMPLES = int(os.environ.get("BRANCHYARD_FUZZ_EXAMPLES", "2000"))
MARK = b"X-Branchyard-Proxy: 0123abcd\r\n"

_NAMES = [b"Host", b"host", b"Content-Length", b"Transfer-Encoding", b"Connection",
          b"X-Forwarded-For", b"X-Forwarded-Host", b"X-Branchyard-Proxy", b"Upgrade",
          b"Cookie", b"X-A", b"", b"Bad Name", b"Na\x00me"]
_VALUES = [b"a.localhost", b"feat.app.localhost:1355", b"chunked", b"Chunked ", b"xchunked",
           b"gzip, chunked", b"5", b"5, 5", b"5, 6", b"1e3", b"-1", b"", b"close",
           b"keep-alive", b"Upgrade", b"websocket", b"1.2.3.4", b"a\x00b", b"a\x01b",
           b"\xe9t\xe9", b" padded\t", b"a\rb", b"a\nb"]
_EOLS = [b"\r\n"] * 8 + [b"\n", b"\r", b"\r\n ", b"\r\n\t"]
_TARGETS = [b"/", b"/a?b=1", b"*", b"http://feat.app.localhost:1355/x?y",
            b"HTTP://A.localhost", b"https://u@b.localhost/", b"http://", b"http:///x",
            b"/a\x7f", b"/\xe9", b"/a\tb", b""]
_VERSIONS = [b"HTTP/1.1"] * 4 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"http/1.1",
                                  b"HTTP/1.10", b"HTTP/1", b""]


def _piece(choices: list[bytes], size: int = 8) -> st.SearchStrategy[bytes]:
    """Mostly a listed piece (the first half valid), now and then random bytes."""
    valid = choices[:max(2, len(choices) // 2)]
    weighted = st.sampled_from([*valid * 6, *choices, b"\x00random"])
    return weighted.flatmap(lambda p: st.binary(max_size=size) if p == b"\x00random"
                            else st.just(p))


@st.composite
def _structured(draw: st.DrawFn) -> bytes:
    method = draw(_piece([b"GET", b"POST", b"OPTIONS", b"M-SEARCH", b"G(T", b""], 4))
    sep = draw(st.sampled_from([b" "] * 6 + [b"  ", b"\t"]))
    line = method + b" " + draw(_piece(_TARGETS)) + sep + draw(_piece(_VERSIONS, 4))
    fields = draw(st.lists(st.tuples(_piece(_NAMES), st.sampled_from([b":"] * 6 + [b" :"]),
                                     st.sampled_from([b" ", b"", b"\t"]), _piece(_VALUES),
                                     st.sampled_from(_EOLS)), max_size=5))
    host = draw(st.sampled_from([b"Host: feat.app.localhost:1355\r\n"] * 4 + [b""]))
    head = line + b"\r\n" + host + b"".join(n + c + s + v + e for n, c, s, v, e in fields)
    return head + b"\r\n\r\n"  # cut at the first blank line, as the server does


_HEADS = st.one_of(_structured(), _structured(), _structured(),
                   st.binary(max_size=200).map(lambda b: b + b"\r\n\r\n"))


def _h11(head: bytes) -> h11.Request | None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    return event if isinstance(event, h11.Request) else None


_CTL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _stricter(head: bytes, ref: h11.Request) -> bool:
    """What the proxy refuses on purpose though h11 accepts it."""
    names = {name for name, _ in ref.headers}
    return bool(
        head.count(b"\r") != head.count(b"\n")  # bare CR/LF: h11 takes LF as a line end
        or head.count(b"\r\n") != head.count(b"\r")
        or _CTL.search(head)  # control characters in a value
        or re.search(rb"\n[ \t]", head)  # obs-fold: h11 unfolds it
        or ref.http_version not in (b"1.0", b"1.1")
        or {b"content-length", b"transfer-encoding"} <= names  # smuggling's favourite
        or re.fullmatch(rb"https?://(?:[^/?#]*@)?(?:[/?#].*)?", ref.target, re.I | re.S))


def _cut(head: bytes) -> bytes:
    return head[:head.index(b"\r\n\r\n") + 4]


def _value(ref: h11.Request, name: bytes) -> bytes | None:
    values = [v for n, v in ref.headers if n == name]
    return values[0] if values else None


def _expected_forwarded(req: Request, ref: h11.Request) -> list[tuple[bytes, bytes]]:
    drops = {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", LOOP_HEADER}
    if req.close:
        drops.add(b"connection")
    if req.absolute:
        drops.add(b"host")
    kept = [(n, v) for n, v in ref.headers if n not in drops]
    if req.absolute:
        kept.insert(0, (b"host", req.host.encode("latin-1")))
    chain = [v for n, v in ref.headers if n == b"x-forwarded-for" and v]
    return [*kept, (b"x-forwarded-for", b", ".join([*chain, b"127.0.0.1"])),
            (b"x-forwarded-proto", b"http"), (b"x-forwarded-host", req.host.encode()),
            (b"x-branchyard-proxy", b"0123abcd")]


def _agree(head: bytes, req: Request, ref: h11.Request) -> None:
    assert (req.method, req.target, b"HTTP/" + ref.http_version) == (
        ref.method, ref.target, req.version)
    if not req.absolute:
        assert req.host.encode("latin-1") == (_value(ref, b"host") or b"").lower()
    length = _value(ref, b"content-length")
    chunked = _value(ref, b"transfer-encoding") == b"chunked"
    assert isinstance(req.body, ChunkedFramer) == chunked
    assert (req.body.remaining if isinstance(req.body, LengthFramer) else 0) == int(
        length or 0)
    out = _h11(forwarded_head(req, b"127.0.0.1", b"http", MARK))
    assert out is not None
    assert list(out.headers) == _expected_forwarded(req, ref)
    seen = 0
    for stop in range(1, len(head) - 1, 7):  # arriving in pieces, it is never refused early
        check_partial_head(head[:stop], seen)
        seen = stop


def test_the_head_parser_agrees_with_h11() -> None:
    seen = {"cases": 0, "accepted": 0, "stricter": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(_HEADS)
    def check(raw: bytes) -> None:
        head = _cut(raw)
        seen["cases"] += 1
        ref = _h11(head)
        if ref is not None and _stricter(head, ref):
            seen["stricter"] += 1
            ref = None
        try:
            req = parse_request(head)
        except BadMessageError:
            assert ref is None, head
            return
        assert ref is not None, head
        seen["accepted"] += 1
        _agree(head, req, ref)

    check()
    print(f"\nhead parser vs h11: {seen}")
    assert seen["cases"] >= EXAMPLES * 0.9
    assert seen["accepted"] >= seen["cases"] // 20  # both verdicts are well exercised
    assert seen["cases"] - seen["accepted"] >= seen["cases"] // 10


def _partial_verdict(data: bytes, seen: int = 0) -> str:
    try:
        check_partial_head(data, seen)
    except BadMessageError as err:
        return str(err)
    return ""


@settings(max_examples=EXAMPLES // 4, deadline=None, derandomize=True)
@given(_HEADS, st.lists(st.integers(min_value=1, max_value=40), max_size=12))
def test_a_head_checked_piece_by_piece_gets_the_verdict_of_one_check(
        raw: bytes, steps: list[int]) -> None:
    data = raw[:raw.index(b"\r\n\r\n") + 2]  # a head still waiting for its end
    seen = 0
    for step in steps:
        stop = min(seen + step, len(data))
        verdict = bool(_partial_verdict(data[:stop], seen))
        assert verdict == bool(_partial_verdict(data[:stop])), data[:stop]
        if verdict:
            break
        seen = stop
