"""Request/response framing: where messages end, and what is refused."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from branchyard.proxy.framing import (
    BadMessageError,
    ChunkedFramer,
    LengthFramer,
    UntilCloseFramer,
)
from branchyard.proxy.http import check_partial_head, parse_request, parse_response
from branchyard.proxy.rewrite import closing_head, forwarded_head


def _chunked(parts: list[bytes], trailer: bytes = b"") -> bytes:
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts if p) + \
        b"0\r\n" + trailer + b"\r\n"


@given(parts=st.lists(st.binary(min_size=1, max_size=300), max_size=6),
       cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=8),
       tail=st.binary(max_size=20))
def test_chunked_end_is_found_wherever_the_stream_is_split(
        parts: list[bytes], cuts: list[int], tail: bytes) -> None:
    body = _chunked(parts, b"X-T: 1\r\n")
    stream = body + tail
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    framer, offset, found = ChunkedFramer(), 0, -1
    for start, stop in itertools.pairwise(points):
        end = framer.consume(stream[start:stop], 0)
        if end >= 0:
            found = offset + end
            break
        offset += stop - start
    assert found == len(body)


def test_length_framer_counts_across_pieces() -> None:
    framer = LengthFramer(10)
    assert framer.consume(b"abcd", 0) == -1
    assert framer.consume(b"xxefghijNEXT", 2) == 8
    assert UntilCloseFramer().consume(b"anything", 0) == -1


def test_bad_chunk_size_is_refused() -> None:
    with pytest.raises(BadMessageError, match="invalid chunk size"):
        ChunkedFramer().consume(b"zz\r\n", 0)


def test_request_fields() -> None:
    req = parse_request(b"POST /a HTTP/1.1\r\nHost: Feat.App.localhost:1355\r\n"
                        b"Content-Length: 5\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n")
    assert (req.method, req.host, req.keep_alive, req.upgrade) == (
        b"POST", "feat.app.localhost:1355", True, False)
    assert isinstance(req.body, LengthFramer)
    assert req.body.remaining == 5
    assert req.forwarded_for == b"1.2.3.4"
    old = parse_request(b"GET / HTTP/1.0\r\n\r\n")
    assert (old.host, old.keep_alive, old.body) == ("", False, None)


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET /\r\nHost: a\r\n\r\n",
    b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\nContent-Length: 5\r\n\r\n",  # a bare LF
    b"GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n",  # a bare CR
    b"GET /a\nb HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n",
    b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
])
def test_ambiguous_or_malformed_requests_are_refused(head: bytes) -> None:
    with pytest.raises(BadMessageError):
        parse_request(head)


def test_response_framing_by_status_and_method() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
    assert parse_response(ok, b"HEAD").body is None
    assert isinstance(parse_response(ok, b"GET").body, LengthFramer)
    assert parse_response(b"HTTP/1.1 304 Not Modified\r\n\r\n", b"GET").body is None
    assert parse_response(b"HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\n\r\n",
                          b"GET").status == 101
    close = parse_response(b"HTTP/1.1 200 OK\r\n\r\n", b"GET")
    assert (close.until_close, close.keep_alive) == (True, False)
    assert isinstance(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                                     b"GET").body, ChunkedFramer)
    with pytest.raises(BadMessageError):
        parse_response(b"garbage\r\n\r\n", b"GET")


def test_forwarded_head_keeps_host_and_replaces_spoofed_headers() -> None:
    req = parse_request(b"GET / HTTP/1.1\r\nHost: a.localhost\r\nX-Forwarded-Host: evil\r\n"
                        b"X-Forwarded-For: 10.0.0.1\r\n\r\n")
    out = forwarded_head(req, b"127.0.0.1", b"http", b"X-Branchyard-Proxy: id\r\n")
    assert out == (b"GET / HTTP/1.1\r\nHost: a.localhost\r\n"
                   b"X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"
                   b"X-Forwarded-Host: a.localhost\r\nX-Branchyard-Proxy: id\r\n\r\n")


def test_a_clients_connection_close_stays_on_its_hop() -> None:
    mark = b"X-Branchyard-Proxy: id\r\n"
    closing = parse_request(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                            b"X-Forwarded-For: 10.0.0.1\r\n\r\n")
    assert (closing.close, closing.keep_alive) == (True, False)
    assert b"connection" not in forwarded_head(closing, b"127.0.0.1", b"http", mark).lower()
    upgrade = parse_request(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                            b"Upgrade: websocket\r\n\r\n")
    assert not upgrade.close
    assert b"Connection: Upgrade" in forwarded_head(upgrade, b"127.0.0.1", b"http", mark)
    old = parse_request(b"GET / HTTP/1.0\r\nHost: a\r\n\r\n")  # HTTP/1.0 closes by default
    assert not old.close
    assert closing_head(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5"
                        b"\r\nContent-Length: 2\r\n\r\n") == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")


def test_an_absolute_target_goes_on_in_origin_form_with_its_own_host() -> None:
    req = parse_request(b"GET http://B.localhost:1355?q=1 HTTP/1.1\r\nHost: a.localhost\r\n"
                        b"X-Branchyard-Proxy: forged\r\n\r\n")
    assert (req.host, req.target) == ("b.localhost:1355", b"http://B.localhost:1355?q=1")
    out = forwarded_head(req, b"127.0.0.1", b"http", b"X-Branchyard-Proxy: id\r\n")
    assert out == (b"GET /?q=1 HTTP/1.1\r\nHost: b.localhost:1355\r\n"
                   b"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"
                   b"X-Forwarded-Host: b.localhost:1355\r\nX-Branchyard-Proxy: id\r\n\r\n")


def test_a_loop_mark_from_the_client_is_dropped() -> None:
    req = parse_request(b"GET / HTTP/1.1\r\nHost: a\r\nx-branchyard-proxy: forged\r\n\r\n")
    assert req.loop_marks == (b"forged",)
    out = forwarded_head(req, b"127.0.0.1", b"http", b"X-Branchyard-Proxy: id\r\n")
    assert b"forged" not in out
    assert out.lower().count(b"x-branchyard-proxy") == 1


@pytest.mark.parametrize(("data", "error"), [
    (b"GET /\r\n", "HTTP/0.9"),
    (b"\x16\x03\x01\x02", "malformed request line"),
    (b"GET / HTTP/2.0\r\nHost", "unsupported HTTP version"),
    (b"GET / HTTP/1.1\nHost", "bare LF"),
    (b"GET / HTTP/1.1\r\nHost: a\x00", "control character"),
    (b"G" * 9000, "request line too long"),
])
def test_a_partial_head_that_cannot_become_a_request_is_refused(
        data: bytes, error: str) -> None:
    with pytest.raises(BadMessageError, match=error):
        check_partial_head(data)


@pytest.mark.parametrize("data", [b"GET", b"GET / HTTP/1.1\r", b"GET / HTTP/1.1\r\nHost: a"])
def test_a_partial_head_that_may_become_a_request_waits(data: bytes) -> None:
    check_partial_head(data)
