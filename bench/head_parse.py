"""The proxy's head parser against httptools (llhttp) and h11, per request head.

    python bench/head_parse.py            # 200,000 parses of each head, best of 5

httptools is given the same job as ``parse_request``: a parser per head (as the
proxy needs after each message), the method, URL, version and the headers the
proxy acts on, collected through its callbacks.

Why the proxy keeps its own parser: httptools is faster at the raw parse (about
2 us less on a small head, 5 us on a browser head with cookies, against some
20-30 us of proxy CPU per request), but it is not a correct reference on its
own. It accepts what h11 and the proxy refuse (a double space in the request
line, HTTP/2.0, a repeated or missing Host) and refuses valid requests (methods
llhttp does not know, a Content-Length list of equal values); see the table this
prints. Host, framing and request-line checks would still run in Python, and a
refused method cannot be fixed on top, so most of the gain would go.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

from branchyard.proxy.http import parse_request

SMALL = b"GET / HTTP/1.1\r\nHost: feat-a.myapp.localhost:1355\r\n\r\n"
BROWSER = (
    b"GET /dashboard/projects?tab=open HTTP/1.1\r\n"
    b"Host: feat-a.myapp.localhost:1355\r\n"
    b"Connection: keep-alive\r\n"
    b'sec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"\r\n'
    b"sec-ch-ua-mobile: ?0\r\n"
    b'sec-ch-ua-platform: "Linux"\r\n'
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/131.0.0.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    b"image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
    b"Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Referer: http://feat-a.myapp.localhost:1355/dashboard\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Accept-Language: en-GB,en;q=0.9,fr;q=0.8\r\n"
    b"Cookie: " + b"; ".join(b"c%d=%s" % (i, b"v" * 40) for i in range(20)) + b"; "
    b"session=eyJhbGciOiJIUzI1NiJ9." + b"x" * 300 + b"\r\n\r\n")
WANTED = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection",
                    b"upgrade", b"x-forwarded-for", b"x-forwarded-proto",
                    b"x-forwarded-host", b"x-branchyard-proxy"))


class _Collect:
    __slots__ = ("done", "fields", "url")

    def __init__(self) -> None:
        self.fields: list[tuple[bytes, bytes]] = []
        self.url = b""
        self.done = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in WANTED:
            self.fields.append((name, value.lower()))

    def on_headers_complete(self) -> None:
        self.done = True


def httptools_parse(head: bytes) -> tuple[bytes, bytes, str, list[tuple[bytes, bytes]]]:
    import httptools

    collect = _Collect()
    parser = httptools.HttpRequestParser(collect)
    parser.feed_data(head)
    return parser.get_method(), collect.url, parser.get_http_version(), collect.fields


def h11_parse(head: bytes) -> object:
    import h11

    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head)
    return conn.next_event()


# heads where llhttp (httptools) and h11 disagree: the proxy would still need its
# own checks on top of httptools, and would refuse methods llhttp does not know
DISPUTED = [
    b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"PURGE-ALL / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
]


def _accepts(fn: Callable[[bytes], object], head: bytes) -> bool:
    import h11
    import httptools

    from branchyard.proxy.framing import BadMessageError

    try:
        fn(head)
    except (BadMessageError, httptools.HttpParserError, h11.RemoteProtocolError):
        return False
    except httptools.HttpParserUpgrade:
        return True
    return True


def _best(fn: Callable[[bytes], object], head: bytes, number: int) -> float:
    runs = timeit.repeat(lambda: fn(head), number=number, repeat=5)
    return min(runs) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    parsers: dict[str, Callable[[bytes], object]] = {"branchyard": parse_request,
                                                      "httptools": httptools_parse,
                                                      "h11": h11_parse}
    print(f"microseconds per head (best of 5 runs of {args.number:,}); lower is better")
    small_title, browser_title = f"small ({len(SMALL)} B)", f"browser ({len(BROWSER)} B)"
    print(f"{'':12}{small_title:>16}{browser_title:>18}")
    for name, fn in parsers.items():
        number = args.number if name != "h11" else max(args.number // 10, 1)
        small, browser = _best(fn, SMALL, number), _best(fn, BROWSER, number)
        print(f"{name:12}{small:>16.2f}{browser:>18.2f}")
    print("\naccepts?" + "".join(f"{name:>12}" for name in parsers))
    for head in DISPUTED:
        verdicts = "".join(f"{'yes' if _accepts(fn, head) else 'no':>12}"
                           for fn in parsers.values())
        shown = head[:-4][:48]
        print(f"  {shown!r}\n{'':8}{verdicts}")


if __name__ == "__main__":
    main()
