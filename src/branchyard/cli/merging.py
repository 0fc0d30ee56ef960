"""`conflicts`, `merge`, `queue …`, `lock`, `unlock`, `locks`, `check-edit`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from branchyard.cli.output import (
    EXIT_CONFLICT,
    EXIT_FAILED,
    EXIT_OK,
    Reply,
    json_option,
    note,
    respond,
)
from branchyard.core.errors import BranchyardError

if TYPE_CHECKING:
    from branchyard.merge.queue import QueueEntry
    from branchyard.merge.targets import Holder, Repo

STRATEGY = click.Choice(["merge", "rebase", "squash"])


def _repo() -> Repo:
    from branchyard.merge.targets import load_repo

    return load_repo(Path.cwd())


@click.command()
@json_option
def conflicts(as_json: bool) -> None:
    """Would any two live worktrees, or a worktree and its base, conflict?

    Uncommitted and untracked changes count. Exits 3 when anything conflicts:
    files, migrations (same number, two Alembic heads), or an edit of a path
    another worktree has locked.
    """
    from branchyard.merge.markers import remember
    from branchyard.merge.radar import scan
    from branchyard.merge.views import radar_json, radar_text

    def body() -> Reply:
        repo = _repo()
        report = scan(repo)
        remember(repo.common_dir, report)
        return Reply(radar_json(report), radar_text(report),
                     EXIT_CONFLICT if report.conflict else EXIT_OK)

    respond("conflicts", as_json, body)


@click.command()
@click.argument("branch", metavar="NAME")
@click.option("--strategy", type=STRATEGY, default=None,
              help="How to combine (default: [merge] strategy, else merge).")
@click.option("--pick", "picks", multiple=True, metavar="COMMIT",
              help="Cherry-pick only these commits (repeatable).")
@click.option("--update-branch", is_flag=True,
              help="Afterwards move the branch to the result (rebases the agent's branch).")
@click.option("--down", "take_down", is_flag=True,
              help="Remove the merged worktree afterwards (`branchyard down`).")
@json_option
def merge(branch: str, strategy: str | None, picks: tuple[str, ...], update_branch: bool,
          take_down: bool, as_json: bool) -> None:
    """Merge NAME's branch (NAME: a branch, or a worktree's slug, subdomain,
    directory or path) into its base in a scratch worktree, run the [merge]
    checks there, and advance the base only when they pass."""
    from branchyard.api.info import worktree_env
    from branchyard.api.removal import DownRequest, down
    from branchyard.merge.landing import MergeRequest, merge_branch
    from branchyard.merge.views import merge_json, merge_text

    def body() -> Reply:
        repo = _repo()
        picked = tuple(_full_commit(repo.common_dir, c) for c in picks)
        result = merge_branch(repo, MergeRequest(branch, strategy or "", picked,
                                                 update_branch), worktree_env)
        data = merge_json(result)
        text = merge_text(result)
        if not take_down:
            return Reply(data, text)
        try:
            down(DownRequest(branch, cwd=repo.main_path))
            data["removed"] = True
        except BranchyardError as err:  # merged all the same: say both
            return Reply(data, text, EXIT_FAILED, (err,))
        return Reply(data, text + f"\nremoved the worktree of {branch}")

    respond("merge", as_json, body)


def _full_commit(cwd: Path, name: str) -> str:
    from branchyard.core.errors import UsageError
    from branchyard.repo import git

    found = git.rev_parse(name, cwd)
    if found is None:
        raise UsageError(f"--pick {name}: no such commit", hint="name commits by hash or ref")
    return found


@click.group()
def queue() -> None:
    """The local merge queue: branches merged one at a time onto the newest base."""


@queue.command("add")
@click.argument("branches", metavar="NAME…", nargs=-1, required=True)
@click.option("--strategy", type=STRATEGY, default=None)
@click.option("--update-branch", is_flag=True,
              help="Move each branch to its merged result after success.")
@json_option
def queue_add(branches: tuple[str, ...], strategy: str | None, update_branch: bool,
              as_json: bool) -> None:
    """Queue the branches of NAME… (in this order; each a branch or a worktree's
    slug, subdomain, directory or path)."""
    from branchyard.merge.queue import add_entries
    from branchyard.merge.views import entry_json, queue_text

    def body() -> Reply:
        repo = _repo()
        named = tuple(repo.branch_of(name) for name in branches)
        for name in named:
            _branch_must_exist(repo.common_dir, name)
        added = add_entries(repo.common_dir, named, strategy or "", update_branch)
        return Reply({"entries": [entry_json(e) for e in added]}, queue_text(added))

    respond("queue add", as_json, body)


def _branch_must_exist(cwd: Path, name: str) -> None:
    from branchyard.core.errors import UsageError
    from branchyard.repo import git

    if not git.branch_exists(name, cwd):
        raise UsageError(f"there is no branch `{name}`", hint="queue local branches")


@queue.command("run")
@click.option("--watch", is_flag=True, help="Keep running, merging entries as they are added.")
@click.option("--poll", type=float, default=2.0, show_default=True,
              help="Seconds between looks at the queue with --watch.")
@json_option
def queue_run(watch: bool, poll: float, as_json: bool) -> None:
    """Merge the queued entries in order; a failed entry is marked and skipped.
    Exits 1 when any entry failed."""
    from branchyard.api.info import worktree_env
    from branchyard.merge.queue import FAILED, RunOptions, run_queue
    from branchyard.merge.targets import load_repo
    from branchyard.merge.views import entry_json, queue_text

    def body() -> Reply:
        cwd = Path.cwd()
        done = run_queue(lambda: load_repo(cwd),
                         RunOptions(watch=watch, poll=poll, on_entry=_announce,
                                    env_for=worktree_env))
        failed = any(e.state == FAILED for e in done)
        return Reply({"entries": [entry_json(e) for e in done]}, queue_text(done),
                     EXIT_FAILED if failed else EXIT_OK)

    respond("queue run", as_json, body)


def _announce(entry: QueueEntry) -> None:
    note(f"queue: {entry.branch} {entry.state}"
         + (f": {entry.reason.splitlines()[0]}" if entry.reason else ""))


@queue.command("status")
@json_option
def queue_status(as_json: bool) -> None:
    """Show every entry with its state, reason and log."""
    from branchyard.merge.queue import read_queue
    from branchyard.merge.views import entry_json, queue_text

    def body() -> Reply:
        entries = read_queue(_repo().common_dir)
        return Reply({"entries": [entry_json(e) for e in entries]}, queue_text(entries))

    respond("queue status", as_json, body)


@queue.command("remove")
@click.argument("names", nargs=-1, required=True)
@json_option
def queue_remove(names: tuple[str, ...], as_json: bool) -> None:
    """Remove entries by id or branch (`done` = every finished entry)."""
    from branchyard.merge.queue import remove_entries
    from branchyard.merge.views import entry_json

    def body() -> Reply:
        gone = remove_entries(_repo().common_dir, names)
        return Reply({"removed": [entry_json(e) for e in gone]},
                     f"removed {len(gone)} entr{'y' if len(gone) == 1 else 'ies'}")

    respond("queue remove", as_json, body)


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--reason", default="", help="Why, shown to the other worktrees.")
@json_option
def lock(paths: tuple[str, ...], reason: str, as_json: bool) -> None:
    """Take advisory locks on PATHS (files, folders or globs) for this worktree."""
    from branchyard.merge.locks import add_locks
    from branchyard.merge.views import lock_json, locks_text

    def body() -> Reply:
        repo = _repo()
        holder, rels = _relative_all(repo, paths)
        made = add_locks(repo.common_dir, holder.slug, holder.name, rels, reason)
        return Reply({"locks": [lock_json(lk) for lk in made]}, locks_text(made))

    respond("lock", as_json, body)


def _relative_all(repo: Repo, paths: tuple[str, ...]) -> tuple[Holder, list[str]]:
    rels = [repo.relative(Path.cwd() / p)[1] for p in paths]
    holder = repo.holder_of(Path.cwd())
    return holder, [r + "/" if p.endswith("/") else r for p, r in zip(paths, rels, strict=True)]


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--force", is_flag=True, help="Also release locks other worktrees hold.")
@json_option
def unlock(paths: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Release this worktree's locks on PATHS (all of them without PATHS)."""
    from branchyard.merge.locks import remove_locks
    from branchyard.merge.views import lock_json

    def body() -> Reply:
        repo = _repo()
        holder, rels = _relative_all(repo, paths)
        gone = remove_locks(repo.common_dir, holder.slug, rels, force)
        return Reply({"released": [lock_json(lk) for lk in gone]},
                     f"released {len(gone)} lock{'' if len(gone) == 1 else 's'}")

    respond("unlock", as_json, body)


@click.command()
@json_option
def locks(as_json: bool) -> None:
    """List every lock with its holder and reason."""
    from branchyard.merge.locks import read_locks
    from branchyard.merge.views import lock_json, locks_text

    def body() -> Reply:
        found = read_locks(_repo().common_dir)
        return Reply({"locks": [lock_json(lk) for lk in found]}, locks_text(found))

    respond("locks", as_json, body)


@click.command("check-edit")
@click.argument("path")
@json_option
def check_edit(path: str, as_json: bool) -> None:
    """Exit 3 when PATH is locked by another worktree or changed in one
    (for an agent's pre-edit hook); 0 when it is clear."""
    from branchyard.merge.editcheck import check_edit as check

    def body() -> Reply:
        result = check(_repo(), Path.cwd() / path)
        return Reply(result.to_json(), result.text(),
                     EXIT_OK if result.clear else EXIT_CONFLICT)

    respond("check-edit", as_json, body)
