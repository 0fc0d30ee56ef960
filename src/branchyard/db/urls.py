"""Database URLs: parse, mask the password, point at another database.

Pure string work (no driver): ``postgresql://u:p@h:5432/app?sslmode=disable``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from branchyard.core.errors import ConfigError

MASK = "****"
DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "mysql": 3306, "mariadb": 3306,
                 "redis": 6379, "rediss": 6379}


@dataclass(frozen=True)
class DbUrl:
    """A server URL split into parts; ``database`` is the path without ``/``."""

    scheme: str
    host: str
    port: int
    user: str = ""
    password: str = ""
    database: str = ""
    query: str = ""

    @property
    def address(self) -> str:
        """``host:port``, what error messages name."""
        return f"{self.host}:{self.port}"

    def render(self, *, masked: bool = False) -> str:
        auth = ""
        if self.user or self.password:
            auth = quote(self.user, safe="")
            if self.password:
                auth += ":" + (MASK if masked else quote(self.password, safe=""))
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        netloc = f"{auth}{host}:{self.port}"
        return urlunsplit((self.scheme, netloc, "/" + quote(self.database, safe=""),
                           self.query, ""))

    def with_database(self, name: str) -> DbUrl:
        return replace(self, database=name)


def parse_url(url: str) -> DbUrl:
    """Split a server URL; raise :class:`ConfigError` when it is not one."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        raise ConfigError(f"not a database URL: {mask_url(url)!r}",
                          hint="use a URL like postgresql://user:password@127.0.0.1:5432/app")
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    except ValueError as exc:
        raise ConfigError(f"bad port in database URL {mask_url(url)!r}",
                          hint="the port must be a number from 1 to 65535") from exc
    return DbUrl(scheme=parts.scheme, host=parts.hostname, port=port,
                 user=unquote(parts.username or ""), password=unquote(parts.password or ""),
                 database=unquote(parts.path.lstrip("/")), query=parts.query)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``****`` (unparseable text is kept
    only up to the first ``@`` so a password never shows)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:{MASK}@{netloc}", parts.path, parts.query,
                       parts.fragment))


def replace_database(url: str, name: str) -> str:
    """The same URL pointing at database ``name`` (query string kept)."""
    return parse_url(url).with_database(name).render()
