"""SIGKILL of `up` and `down --force` in a 20,000-file repository, at random
moments spread over each command's real run time (so inside git's checkout and
removal, which take most of it), then `doctor --fix`: the world is consistent
again (git worktrees and branches, ledger, port leases, `pg_database`,
processes, directories), nothing is left behind and nothing of the user's lost.

The repository is built once for the module (`git fast-import`, one commit);
both tests share it and leave it as they found it. Each trial's leftovers are
counted on their own, so one bad trial does not spoil the count of the next.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from branchyard.ledger import WorktreeRecord
from branchyard.system import ports
from tests.conftest import GIT_ENV, git

from .conftest import (
    Project,
    assert_world_consistent,
    branches,
    cli,
    cli_env,
    cli_json,
    drop_prefixed,
    make_project,
    pg_names,
    pg_url,
    pids_inside,
    worktree_paths,
)

FILES = 20_000
TRIALS = 10  # kills wanted per command
KEEP = "feat/keep"  # a worktree with the user's own work, alive through every trial
USER_FILES = {"notes.txt": "my own notes\n", "pkg000/mod000.txt": "edited by hand\n"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def fast_import_stream(count: int) -> bytes:
    """One commit on main adding ``count`` small files in 100 directories."""
    parts = [b"commit refs/heads/main\ncommitter T <t@example.com> 1700000000 +0000\n"
             b"data 15\n20k small files\nfrom refs/heads/main^0\n"]
    for i in range(count):
        body = f"file {i}\n".encode()
        parts.append(f"M 100644 inline pkg{i % 100:03d}/mod{i:05d}.txt\n"
                     f"data {len(body)}\n".encode() + body + b"\n")
    return b"".join(parts)


@pytest.fixture(scope="module")
def big_project(tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[Project, dict[str, str]]]:
    """A project with 20,000 committed files and a live worktree holding user
    work, in a sealed environment of its own (the tests enter it: `big`).

    It lives in memory (``/dev/shm``) when the machine has it: on a disk shared
    with other work a 20,000-file checkout takes from 0.5 to 15 s, and the
    moments to kill at are measured on the command's real run anyway."""
    import secrets
    import shutil
    import tempfile

    uid = f"byk{secrets.token_hex(3)}"
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="branchyard-", dir=shm)) \
        if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path_factory.mktemp("big")
    env = {"HOME": str(root / "home"), "BRANCHYARD_STATE_DIR": str(root / "home" / "state"),
           **GIT_ENV}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("CONDUCTOR_PORT", raising=False)
        project = make_project(root / "app", uid)
        try:
            subprocess.run(["git", "fast-import", "--quiet"], cwd=project.path, check=True,
                           input=fast_import_stream(FILES), timeout=120)
            git("reset", "--hard", "-q", cwd=project.path)
            cli(project.path, "up", KEEP, check=True)
            keep = keep_path(project)
            for rel, text in USER_FILES.items():
                (keep / rel).write_text(text)
            yield project, env
        finally:
            cli(project.path, "down", "--force", KEEP)
            drop_prefixed(uid)
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def big(big_project: tuple[Project, dict[str, str]], monkeypatch: pytest.MonkeyPatch
        ) -> Project:
    """The module's project, with its environment (own HOME, own state dir)."""
    project, env = big_project
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return project


def keep_path(project: Project) -> Path:
    record = project.ledger.read().by_branch(KEEP)
    assert record is not None
    return Path(record.path)


def world(project: Project) -> set[str]:
    """Everything of this repository's that can be left behind, as words."""
    state = project.ledger.read()
    found = {f"worktree {p}" for p in worktree_paths(project.path)}
    found |= {f"branch {b}" for b in branches(project.path)}
    found |= {f"ledger entry {w.branch} ({w.state})" for w in state.worktrees.values()}
    found |= {f"intent {k}" for k in state.sections.get("intents", {})}
    found |= {f"database {n}" for n in pg_names(project.uid)}
    found |= {f"lease {lease.port} {lease.owner.rpartition('#')[2]}"
              for lease in ports.all_leases() if lease.owner.startswith(f"{project.common}#")}
    found |= {f"directory {c.name}" for c in project.path.parent.iterdir()
              if c.name.startswith("app.")}
    found |= {f"process {pid}" for pid in pids_inside(project.path.parent)}
    return found


def user_work(project: Project) -> dict[str, str]:
    """What the user made that no command here was asked to remove: the kept
    worktree's own files, main's database rows, main's clean checkout."""
    keep = keep_path(project)
    work = {rel: (keep / rel).read_text() if (keep / rel).exists() else "(gone)"
            for rel in USER_FILES}
    from branchyard.db import postgres as pg

    with pg.connect(pg_url(project.main_db)) as conn:
        work["main rows"] = str(conn.execute("SELECT count(*) FROM items").fetchone())
    work["main status"] = git("status", "--porcelain", cwd=project.path)
    work["main files"] = hashlib.sha1(
        git("ls-files", "-s", cwd=project.path).encode()).hexdigest()
    return work


@dataclass
class Tally:
    trials: int = 0
    killed: int = 0
    in_git: int = 0  # kills that landed while git was checking out / removing
    left_after_kill: int = 0  # trials where the kill left something (doctor's job)
    left_after_fix: int = 0  # trials where `doctor --fix` did not clean it all
    details: list[str] = field(default_factory=list)

    def line(self, verb: str) -> str:
        return (f"{verb}: {self.killed} kills in {self.trials} trials ({self.in_git} "
                f"inside git's own work); left something after the kill: "
                f"{self.left_after_kill}; after doctor --fix: {self.left_after_fix}")


@dataclass(frozen=True)
class Watch:
    """Whether git's part of a command (the checkout of `up`, the removal of
    `down`) runs now: a git child of the command doing it."""

    words: tuple[str, ...]  # ("reset", "--hard") or ("worktree", "remove")

    def running(self, pid: int) -> bool:
        try:
            children = psutil.Process(pid).children(recursive=True)
            return any(self._is_it(c.cmdline()) for c in children)
        except psutil.Error:
            return False

    def _is_it(self, cmdline: list[str]) -> bool:
        return len(cmdline) > 2 and os.path.basename(cmdline[0]) == "git" and all(
            w in cmdline for w in self.words)


def watch_for(command: list[str]) -> Watch:
    return Watch(("worktree", "remove") if command[0] == "down" else ("reset", "--hard"))


@dataclass(frozen=True)
class Timing:
    total: float  # the command's run time
    git: float  # how long git's checkout or removal took in it


def run_cli(project: Project, args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "branchyard", *args], cwd=project.path,
                            env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def measure(project: Project, args: list[str], watch: Watch) -> Timing:
    """Run the command once, watching git do its part."""
    start = time.monotonic()
    proc = run_cli(project, args)
    began = ended = 0.0
    while proc.poll() is None:
        now = time.monotonic() - start
        running = watch.running(proc.pid)
        began = began or (now if running else 0.0)
        ended = ended or (now if began and not running else 0.0)
        time.sleep(0.001)
    total = time.monotonic() - start
    assert proc.returncode == 0, args
    return Timing(total, max((ended or total) - began, 0.01))


def kill_during(project: Project, args: list[str], delay: float, aimed: bool,
                whole_group: bool) -> tuple[bool, bool]:
    """Run the CLI and SIGKILL it ``delay`` s after it starts, or (``aimed``)
    after its git child doing git's part is seen; with its git children
    (``whole_group``) or alone, as `kill -9 PID` does. Whether it was killed,
    and whether that git child was running then."""
    watch = watch_for(args)
    proc = run_cli(project, args)
    began = 0.0 if aimed else time.monotonic()
    inside = False
    while proc.poll() is None:
        now = time.monotonic()
        if not began and watch.running(proc.pid):
            began = now
        if began and now - began >= delay:
            inside = watch.running(proc.pid)
            if whole_group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            break
        time.sleep(0.001)
    proc.wait(30)
    group = [p for p in psutil.process_iter(["pid"]) if _pgid(p.info["pid"]) == proc.pid]
    psutil.wait_procs(group, timeout=60)  # a git child left alone finishes on its own
    return proc.returncode == -signal.SIGKILL, inside


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return -1


def trial(project: Project, tally: Tally, baseline: set[str], work: dict[str, str],
          args: list[str], how: tuple[float, bool, bool]) -> bool:
    """One kill and its repair; counts what it left. Whether it was a kill."""
    delay, aimed, whole_group = how
    tally.trials += 1
    killed, inside = kill_during(project, args, delay, aimed, whole_group)
    tally.killed += killed
    tally.in_git += killed and inside
    if world(project) - baseline:
        tally.left_after_kill += 1
    fixed = cli_json(project.path, "doctor", "--fix", code=None)
    problems = [] if fixed["healthy"] else [f"doctor --fix: {fixed}"]
    branch = args[-1]
    record = project.ledger.read().by_branch(branch)
    if record is not None:  # `up` had finished, or `down` had not begun: all of it is there
        problems += not_whole(project, record)
        cli(project.path, "down", "--force", branch, check=True)
    left = sorted(world(project) - baseline)
    lost = {k: v for k, v in user_work(project).items() if v != work[k]}
    if left or lost or problems:
        tally.left_after_fix += 1
        tally.details.append(
            f"{' '.join(args)} killed {delay:.3f}s after "
            f"{'git began' if aimed else 'start'} ({'with' if whole_group else 'without'} "
            f"its children, {'inside' if inside else 'outside'} git's part): left {left}, "
            f"lost {lost}, {problems}")
        baseline |= set(left)  # counted once; the next trial is judged on its own
    return killed


def not_whole(project: Project, record: WorktreeRecord) -> list[str]:
    """What is wrong with a worktree the ledger calls live (judged on its own,
    whatever another trial left)."""
    path = Path(record.path)
    problems = [] if record.state == "ready" else [f"state {record.state!r}"]
    if os.path.realpath(path) not in {os.path.realpath(p) for p in worktree_paths(project.path)}:
        problems.append("git does not list it")
    done = subprocess.run(["git", "status", "--porcelain"], cwd=path, capture_output=True,
                          text=True, check=False) if path.is_dir() else None
    if done is None or done.returncode != 0 or done.stdout:
        problems.append(f"not a whole checkout: {done.stdout[:200] if done else 'no directory'}")
    clones = {r.spec.database for r in record.resources if r.kind == "postgres"}
    if not clones or not clones <= pg_names(project.uid):
        problems.append(f"its database is missing ({clones})")
    leased = {lease.port for lease in ports.all_leases()
              if lease.owner == f"{project.common}#{record.slug}"}
    if leased != set(record.ports.values()):
        problems.append(f"its leases {leased} are not its ports {record.ports}")
    return [f"the live worktree {record.branch} is not whole: {p}" for p in problems]


def report(tally: Tally, verb: str) -> None:
    print("\n" + tally.line(verb) + "".join(f"\n  {d}" for d in tally.details))
    assert tally.killed >= TRIALS, tally.line(verb)
    assert tally.left_after_fix == 0, tally.line(verb) + "\n" + "\n".join(tally.details)


def trials(project: Project, command: list[str], before: Callable[[str], None]) -> Tally:
    """Kill ``command`` + a fresh branch until TRIALS kills (seeded): every other
    one at a random moment inside git's own part (checkout, removal), the others
    anywhere in the command's run; the git children killed too or (every other
    pair) left to finish, as a `kill -9` of branchyard alone leaves them."""
    rng = random.Random(f"{os.environ.get('RELIABILITY_SEED', '20261201')}-{command[0]}")
    timing = Timing(float("inf"), float("inf"))
    for _ in range(2):  # the quicker of two runs: the first warms the caches
        before("feat/warm")
        run = measure(project, [*command, "feat/warm"], watch_for(command))
        timing = Timing(min(timing.total, run.total), min(timing.git, run.git))
        if command[0] == "up":
            cli(project.path, "down", "--force", "feat/warm", check=True)
    baseline, work, tally = world(project), user_work(project), Tally()
    n = 0
    while tally.killed < TRIALS and tally.trials < TRIALS + 4:
        n += 1
        branch = f"feat/{command[0]}{n}"
        before(branch)
        aimed = n % 2 == 1
        delay = rng.uniform(0, 0.9 * timing.git) if aimed else \
            rng.uniform(0.3, 0.95 * timing.total)
        if not trial(project, tally, baseline, work, [*command, branch],
                     (delay, aimed, (n // 2) % 2 == 0)) and not aimed:
            timing = Timing(delay, timing.git)  # it ran quicker than measured: aim shorter
    report(tally, f"{' '.join(command)} (run {timing.total:.2f}s, git's part "
                  f"{timing.git:.2f}s)")
    return tally


def test_random_sigkill_of_up_in_a_large_repository(big: Project) -> None:
    trials(big, ["up"], lambda branch: None)
    assert_world_consistent(big, live=[KEEP])


def test_random_sigkill_of_down_force_in_a_large_repository(big: Project) -> None:
    def bring_up(branch: str) -> None:
        cli(big.path, "up", branch, check=True)

    trials(big, ["down", "--force"], bring_up)
    assert_world_consistent(big, live=[KEEP])
