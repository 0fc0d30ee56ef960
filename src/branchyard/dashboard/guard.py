"""Cross-site protection for the dashboard's actions.

Any page open in the user's browser can send requests to 127.0.0.1, so an action
(a POST) runs only when all of these hold: the Host is a dashboard host, the
Origin is exactly the dashboard's own origin, and the form carries the
session's token — a random value the proxy issued in a ``SameSite=Strict``
cookie, which a cross-site request neither carries nor can read.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict

COOKIE = "branchyard_dashboard"
MAX_SESSIONS = 256


class Sessions:
    """The tokens this proxy issued (it forgets them on restart: reload the page)."""

    def __init__(self) -> None:
        self._tokens: OrderedDict[str, None] = OrderedDict()

    def token_for(self, cookie_header: str) -> tuple[str, bool]:
        """The session's token, and whether it is new (then the cookie must be set)."""
        known = self._known(cookie_token(cookie_header))
        if known:
            return known, False
        token = secrets.token_urlsafe(24)
        self._tokens[token] = None
        while len(self._tokens) > MAX_SESSIONS:
            self._tokens.popitem(last=False)
        return token, True

    def _known(self, token: str) -> str:
        if token and token in self._tokens:
            self._tokens.move_to_end(token)
            return token
        return ""

    def check(self, cookie_header: str, form_token: str) -> bool:
        cookie = self._known(cookie_token(cookie_header))
        return bool(cookie) and hmac.compare_digest(cookie.encode(), form_token.encode())


def cookie_token(header: str) -> str:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return ""


def set_cookie(token: str) -> str:
    return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"


def refusal(origin: str, host: str, proto: str, fetch_site: str) -> str:
    """Why a POST is refused as cross-site, or "" when its origin is the dashboard's."""
    expected = f"{proto}://{host}"
    if not origin:
        return "the request has no Origin header"
    if origin.lower() != expected.lower():
        return f"the request comes from {origin}, not from {expected}"
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return f"the browser marks the request {fetch_site}"
    return ""
