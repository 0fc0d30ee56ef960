"""Migration collisions: two sides adding migrations that cannot both apply —
the same number in the same folder, or two Alembic revisions on the same parent
(two heads) — which git merges without a textual conflict.

A pattern is a regular expression on the repository-relative path with the
groups ``scope`` (the folder whose numbers must be unique) and ``key`` (the
number). Alembic files are keyed by their ``down_revision`` instead, read from
the file itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from branchyard.merge.changes import Change

ALEMBIC = "alembic"
_DIRS = r"(?:.*/)?"


@dataclass(frozen=True)
class MigrationPattern:
    framework: str
    regex: re.Pattern[str]
    # Files of one migration (golang-migrate's .up/.down pair, Prisma's folder)
    # share a unit: the part of the path before this suffix pattern.
    unit_suffix: str = ""


@dataclass(frozen=True)
class Migration:
    framework: str
    scope: str
    key: str  # the number, or for Alembic the parent revision
    unit: str  # one migration (file or folder); equal units are the same migration
    path: str


@dataclass(frozen=True)
class MigrationCollision:
    framework: str
    scope: str
    key: str
    ours: tuple[str, ...]  # paths added by the first side
    theirs: tuple[str, ...]  # paths added by the second side

    def describe(self) -> str:
        what = ("both add a revision on parent" if self.framework == ALEMBIC
                else "both add migration number")
        return f"{self.framework}: {what} {self.key} in {self.scope or '.'}"


def _pattern(framework: str, regex: str, unit_suffix: str = "") -> MigrationPattern:
    return MigrationPattern(framework, re.compile(regex), unit_suffix)


DEFAULT_PATTERNS: tuple[MigrationPattern, ...] = (
    _pattern("prisma", rf"^(?P<scope>{_DIRS}prisma/migrations)/(?P<key>\d{{8,}})_[^/]+/[^/]+$",
             r"/[^/]+$"),
    _pattern(ALEMBIC, rf"^(?P<scope>{_DIRS}(?:alembic|migrations)/versions)/[^/]+\.py$"),
    _pattern("django", rf"^(?P<scope>{_DIRS}migrations)/(?P<key>\d{{4}})_[^/]+\.py$"),
    _pattern("rails", rf"^(?P<scope>{_DIRS}db/migrate)/(?P<key>\d{{14}})_[^/]+\.rb$"),
    _pattern("knex", rf"^(?P<scope>{_DIRS}migrations)/(?P<key>\d{{14}})_[^/]+\.[cm]?[jt]s$"),
    _pattern("golang-migrate", r"^(?P<scope>(?:.*/)?[^/]+)/(?P<key>\d+)_[^/]+\.(?:up|down)\.sql$",
             r"\.(?:up|down)\.sql$"),
    _pattern("drizzle", rf"^(?P<scope>{_DIRS}drizzle)/(?P<key>\d{{4,}})_[^/]+\.sql$"),
    _pattern("flyway", rf"^(?P<scope>{_DIRS}[^/]+)/V(?P<key>\d+(?:[._]\d+)*)__[^/]+\.sql$"),
    _pattern("sql", rf"^(?P<scope>{_DIRS}(?:migrations|migrate|sql|schema))/"
                    r"(?P<key>\d+)[_-][^/]+\.sql$"),
)


def patterns_from_config(globs: Sequence[str]) -> tuple[MigrationPattern, ...]:
    """User patterns (checked first) followed by the defaults.

    A user pattern is a glob with ``{num}`` where the number is, e.g.
    ``db/changes/{num}_*.sql``; ``**/`` matches any folders.
    """
    return tuple(_pattern("custom", _glob_regex(g)) for g in globs) + DEFAULT_PATTERNS


def _glob_regex(glob: str) -> str:
    folder, _, name = glob.rpartition("/")
    if "{num}" not in name:
        name = "{num}" + name
    scope = _translate(folder) if folder else ""
    return f"^(?P<scope>{scope}){'/' if folder else ''}{_translate(name)}$"


def _translate(glob: str) -> str:
    out = re.escape(glob).replace(r"\{num\}", r"(?P<key>\d+)")
    out = out.replace(r"\*\*/", _DIRS).replace(r"\*\*", ".*")
    return out.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")


def classify(path: str, patterns: Sequence[MigrationPattern]) -> tuple[MigrationPattern,
                                                                        re.Match[str]] | None:
    """The first pattern that ``path`` matches, with its match."""
    for pattern in patterns:
        match = pattern.regex.match(path)
        if match:
            return pattern, match
    return None


def added_migrations(changes: Iterable[Change], patterns: Sequence[MigrationPattern],
                     read: Callable[[Sequence[str]], Mapping[str, str]]) -> tuple[Migration, ...]:
    """The migrations among added files; ``read`` gives blob texts (Alembic only)."""
    found: list[tuple[MigrationPattern, re.Match[str], Change]] = []
    for change in changes:
        hit = classify(change.path, patterns) if change.status == "A" else None
        if hit:
            found.append((*hit, change))
    texts = read([c.blob for p, _, c in found if p.framework == ALEMBIC])
    result = [_migration(p, m, c, texts) for p, m, c in found]
    return tuple(m for m in result if m is not None)


def _migration(pattern: MigrationPattern, match: re.Match[str], change: Change,
               texts: Mapping[str, str]) -> Migration | None:
    scope = match.group("scope") or ""
    if pattern.framework == ALEMBIC:
        revision, parent = alembic_revision(texts.get(change.blob, ""))
        if revision is None or parent is None:
            return None
        return Migration(ALEMBIC, scope, parent, revision, change.path)
    key = match.group("key").lstrip("0") or "0"
    unit = re.sub(pattern.unit_suffix, "", change.path) if pattern.unit_suffix else change.path
    return Migration(pattern.framework, scope, key, unit, change.path)


_REVISION = re.compile(r"""^revision\b[^=\n]*=\s*['"]([^'"]+)['"]""", re.M)
_DOWN = re.compile(r"""^down_revision\b[^=\n]*=\s*(?:['"]([^'"]+)['"]|(None))""", re.M)


def alembic_revision(text: str) -> tuple[str | None, str | None]:
    """(revision, down_revision) of an Alembic script; the parent of a first
    revision is ``<base>``; a merge revision (tuple parent) yields no parent."""
    rev = _REVISION.search(text)
    down = _DOWN.search(text)
    if not rev or not down:
        return (rev.group(1) if rev else None), None
    return rev.group(1), down.group(1) or "<base>"


def collisions(ours: Sequence[Migration], theirs: Sequence[Migration]
               ) -> tuple[MigrationCollision, ...]:
    """Keys both sides added with different migrations."""
    mine = _by_key(ours)
    found: list[MigrationCollision] = []
    for key, their_group in sorted(_by_key(theirs).items()):
        my_group = mine.get(key)
        if not my_group:
            continue
        if {m.unit for m in my_group} == {m.unit for m in their_group}:
            continue  # the same migration reached both sides
        found.append(MigrationCollision(
            key[0], key[1], key[2],
            tuple(sorted(m.path for m in my_group)),
            tuple(sorted(m.path for m in their_group))))
    return tuple(found)


def _by_key(migrations: Iterable[Migration]) -> dict[tuple[str, str, str], list[Migration]]:
    groups: dict[tuple[str, str, str], list[Migration]] = {}
    for m in migrations:
        groups.setdefault((m.framework, m.scope, m.key), []).append(m)
    return groups
