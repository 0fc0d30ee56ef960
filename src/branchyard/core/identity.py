"""The frozen identity of a worktree, and every name derived from a branch.

Pure functions only: this module is the single derivation surface, so that no
command ever computes a resource name on its own.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass

HASH_LEN = 6
# `<prefix>_<slug>` must fit a 63-byte Postgres identifier with a 16-byte prefix.
SLUG_MAX = 63 - 16 - 1
_SLUG_BASE_MAX = SLUG_MAX - HASH_LEN - 1
DNS_LABEL_MAX = 63


@dataclass(frozen=True)
class Identity:
    """Who a worktree is, frozen when it is first provisioned."""

    branch: str
    slug: str
    subdomain: str
    index: int


def short_hash(name: str, length: int = HASH_LEN) -> str:
    return hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).hexdigest()[:length]


def _ascii_fold(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return folded.lower()


def slug_for(name: str) -> str:
    """``feat/OAuth-v2`` → ``feat_oauth_v2_1a2b3c``: lowercase ``[a-z0-9_]``, starts
    with a letter, ends with a hash of the full name, at most ``SLUG_MAX`` bytes."""
    base = re.sub(r"[^a-z0-9]+", "_", _ascii_fold(name)).strip("_")
    base = re.sub(r"^[^a-z]+", "", base)  # must start with a letter
    base = base[:_SLUG_BASE_MAX].rstrip("_") or "wt"
    return f"{base}_{short_hash(name)}"


def dns_label(name: str, max_len: int = DNS_LABEL_MAX) -> str:
    """A valid DNS label (``[a-z0-9-]``, no leading/trailing ``-``) or ``""``."""
    label = re.sub(r"[^a-z0-9]+", "-", _ascii_fold(name)).strip("-")
    return label[:max_len].rstrip("-")


def subdomain_for(name: str, taken: Collection[str] = ()) -> str:
    """A DNS label for ``name`` that is not in ``taken``.

    The plain label is used when it is free; a name that sanitizes like a live
    one gets a hash suffix, so ``feat/a-b`` and ``feat/a_b`` never share a URL.
    """
    plain = dns_label(name)
    if plain and plain not in taken:
        return plain
    digest = hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).hexdigest()
    for length in range(HASH_LEN, len(digest) + 1):
        suffix = digest[:length]
        head = plain[: DNS_LABEL_MAX - length - 1].rstrip("-") or "wt"
        candidate = f"{head}-{suffix}"
        if candidate not in taken:
            return candidate
    counter = 2
    while f"wt-{digest[:20]}-{counter}" in taken:
        counter += 1
    return f"wt-{digest[:20]}-{counter}"


def next_index(taken: Collection[int]) -> int:
    """The smallest index ≥ 1 not in use (0 is the main worktree)."""
    index = 1
    while index in taken:
        index += 1
    return index


def derive_identity(
    name: str,
    *,
    taken_subdomains: Collection[str] = (),
    taken_indexes: Collection[int] = (),
) -> Identity:
    """The identity a new worktree for branch (or directory) ``name`` gets."""
    return Identity(
        branch=name,
        slug=slug_for(name),
        subdomain=subdomain_for(name, taken_subdomains),
        index=next_index(taken_indexes),
    )


def project_label(name: str) -> str:
    """The project's DNS label (``My App`` → ``my-app``)."""
    return dns_label(name) or "app"


def compose_project_name(repo: str, slug: str) -> str:
    """``COMPOSE_PROJECT_NAME``: lowercase alphanumerics, ``-`` and ``_``."""
    head = re.sub(r"[^a-z0-9_-]+", "-", _ascii_fold(repo)).strip("-_") or "app"
    return f"{head}-{slug}"


def worktree_host(subdomain: str | None, project: str, tld: str = "localhost") -> str:
    """``feat-x.myapp.localhost``; the main worktree (``None``) gets ``myapp.localhost``."""
    return f"{subdomain}.{project}.{tld}" if subdomain else f"{project}.{tld}"


def worktree_url(subdomain: str | None, project: str, *, port: int = 1355,
                 https: bool = False, tld: str = "localhost") -> str:
    """The dev URL of a worktree behind the branchyard proxy."""
    scheme = "https" if https else "http"
    default = 443 if https else 80
    suffix = "" if port == default else f":{port}"
    return f"{scheme}://{worktree_host(subdomain, project, tld)}{suffix}"
