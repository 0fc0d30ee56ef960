"""`branchyard hooks install`: worktrees made by other tools are set up on
creation; a user's own hook is kept and chained, never overwritten."""

from __future__ import annotations

import json
from pathlib import Path

from branchyard.ledger import Ledger
from tests.conftest import git

from .conftest import cli, cli_json


def test_a_worktree_made_by_plain_git_is_set_up_by_the_hook(repo: Path) -> None:
    done = cli_json(repo, "hooks", "install")
    assert done["hook"] == str(repo / ".git" / "hooks" / "post-checkout")
    assert done["action"] == "installed" and done["chained"] is None
    wt = repo.parent / "by-git"
    git("worktree", "add", "-q", "-b", "feat/h", str(wt), cwd=repo)
    record = Ledger(repo / ".git").read().by_path(wt)
    assert record is not None and record.state == "ready" and record.branch == "feat/h"
    assert (wt / ".env.development.local").is_file()
    # a checkout inside an existing worktree is not a new worktree: nothing happens
    git("checkout", "-q", "-b", "other", cwd=wt)
    assert len(Ledger(repo / ".git").read().worktrees) == 1
    # `up` sets its worktree up itself, once, and records that it made the branch
    up = cli_json(repo, "up", "feat/u")
    assert up["created_branch"] is True
    assert Ledger(repo / ".git").read().by_branch("feat/u").created_branch  # type: ignore[union-attr]
    assert cli_json(repo, "hooks", "install")["action"] == "already installed"
    cli(repo, "down", "feat/u", check=True)
    cli(repo, "down", "other", "--force", check=True)


def test_an_existing_hook_is_chained_and_restored(repo: Path, tmp_path: Path) -> None:
    hook = repo / ".git" / "hooks" / "post-checkout"
    log = tmp_path / "mine.log"
    mine = f'#!/bin/sh\necho "mine $1" >> {json.dumps(str(log))}\n'
    hook.write_text(mine)
    hook.chmod(0o755)
    done = cli_json(repo, "hooks", "install")
    assert done["chained"] == str(hook.with_name("post-checkout.pre-branchyard"))
    wt = repo.parent / "chained"
    git("worktree", "add", "-q", "-b", "feat/c", str(wt), cwd=repo)
    assert log.read_text().startswith("mine 0000000")  # the user's hook ran
    assert Ledger(repo / ".git").read().by_path(wt) is not None  # and so did setup
    removed = cli_json(repo, "hooks", "uninstall")
    assert removed["action"] == "removed (your previous hook is back)"
    assert hook.read_text() == mine
    cli(repo, "down", "feat/c", check=True)


def test_a_hook_that_is_a_project_file_is_never_replaced(repo: Path) -> None:
    hooks = repo / ".githooks"
    hooks.mkdir()
    (hooks / "post-checkout").write_text("#!/bin/sh\nexit 0\n")
    git("config", "core.hooksPath", ".githooks", cwd=repo)
    done = cli(repo, "hooks", "install")
    assert done.returncode == 1
    assert f"error: {hooks / 'post-checkout'} already exists and is a file of the project" \
        in done.stderr
    assert "hint: add this line to it:" in done.stderr
    assert (hooks / "post-checkout").read_text() == "#!/bin/sh\nexit 0\n"
