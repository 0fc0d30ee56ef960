"""What `ls`, `status` and results show about a worktree."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from branchyard.config import DATABASE_ENGINES, ProxyConfig
from branchyard.ledger import WorktreeRecord
from branchyard.providers import get_provider
from branchyard.repo import RepoInfo
from branchyard.resources.plan import Allocation


@dataclass(frozen=True)
class WorktreeView:
    branch: str | None  # the branch checked out now (None: detached)
    path: str
    slug: str | None
    subdomain: str | None
    index: int | None
    main: bool
    state: str  # ready | provisioning | unmanaged | missing | main
    url: str | None
    ports: dict[str, int] = field(default_factory=dict)
    databases: list[dict[str, Any]] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)
    dirty: bool | None = None
    frozen_branch: str | None = None  # the branch name the identity was derived from
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(data.pop("extra"))
        return data


def databases_of(record: WorktreeRecord) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = []
    for res in record.resources:
        if res.kind in DATABASE_ENGINES:
            described = get_provider(res.kind).describe(Allocation(res.kind, res.key, res.spec))
            shown.append({**described, "state": res.state})
    return shown


def url_of(record: WorktreeRecord | None, repo: RepoInfo, proxy: ProxyConfig) -> str:
    """The dev URL recorded at setup, else the one the config derives (the main
    worktree's when ``record`` is None)."""
    if record is not None and record.env.get("BRANCHYARD_URL"):
        return record.env["BRANCHYARD_URL"]
    from branchyard.proxy.sites import site_url

    return site_url(record.subdomain if record else None, repo.project, proxy)
