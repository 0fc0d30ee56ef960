"""Benchmark: Claude Code's WorktreeCreate event to a ready worktree with a cloned
Postgres database — the hook command as `agents init` wires it, run by `sh -c`
with the payload on stdin, timed from hook start to its path on stdout — with
the clone pool off and on. Also the same for WorktreeRemove.

    python bench/agents_create.py [--runs 5] [--rows 10000]

Needs the machine's Postgres (PGURL, default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ADMIN = os.environ.get("PGURL", "postgresql://postgres@127.0.0.1:5432/postgres")
SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid",
       "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.invalid",
       "GIT_CONFIG_NOSYSTEM": "1", "PYTHONPATH": str(SRC)}


def url(db: str) -> str:
    return ADMIN.rsplit("/", 1)[0] + "/" + db


def sh(command: str, cwd: Path, env: dict[str, str], stdin: str = "") -> str:
    done = subprocess.run(["sh", "-c", command], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, check=False, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"`{command}` failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def project(root: Path, prefix: str, rows: int, pool: int, env: dict[str, str]) -> Path:
    main_db = f"{prefix}_main"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{main_db}"')
    with psycopg.connect(url(main_db), autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
        conn.execute("INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, %s) g",
                     (rows,))
    repo = root / f"app{pool}"
    repo.mkdir()
    (repo / "branchyard.toml").write_text(
        f'[ports]\nnames = ["PORT"]\n[[database]]\nname = "app"\nsource = "{url(main_db)}"\n'
        f"pool = {pool}\n")
    (repo / ".gitignore").write_text(".env*\n")
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *argv], cwd=repo, env=env, check=True, capture_output=True)
    sh("branchyard agents init --only claude", repo, env)
    return repo


def hook(repo: Path, event: str) -> str:
    settings = json.loads((repo / ".claude/settings.json").read_text())
    return str(settings["hooks"][event][0]["hooks"][0]["command"])


def wait_refills(repo: Path) -> None:
    import psutil

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not [p for p in psutil.process_iter(["cmdline"])
                if "_refill" in (p.info["cmdline"] or [])
                and str(repo / ".git") in (p.info["cmdline"] or [])]:
            return
        time.sleep(0.05)


def measure(repo: Path, env: dict[str, str], runs: int) -> tuple[list[float], list[float]]:
    creates, removes = [], []
    for i in range(runs):
        wait_refills(repo)  # each create starts from a refilled pool, as between sessions
        payload = json.dumps({"session_id": "bench", "cwd": str(repo),
                              "hook_event_name": "WorktreeCreate", "name": f"bench-{i}",
                              "transcript_path": "/dev/null"})
        start = time.perf_counter()
        path = sh(hook(repo, "WorktreeCreate"), repo, env, payload).strip()
        creates.append(time.perf_counter() - start)
        gone = json.dumps({"session_id": "bench", "cwd": str(repo), "worktree_path": path,
                           "hook_event_name": "WorktreeRemove", "transcript_path": "/dev/null"})
        start = time.perf_counter()
        sh(hook(repo, "WorktreeRemove"), repo, env, gone)
        removes.append(time.perf_counter() - start)
    return creates, removes


def show(label: str, times: list[float]) -> None:
    print(f"{label:<34} median {statistics.median(times):6.3f} s   "
          f"min {min(times):6.3f}   max {max(times):6.3f}   (n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="by-bench-agents-"))
    prefix = f"bybench{secrets.token_hex(3)}"
    shim = root / "bin"
    shim.mkdir()
    (shim / "branchyard").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m branchyard "$@"\n')
    (shim / "branchyard").chmod(0o755)
    env = {**ENV, "BRANCHYARD_STATE_DIR": str(root / "state"),
           "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}
    try:
        print(f"Postgres main database: {args.rows} rows; hook start → path on stdout")
        for pool in (0, 1):
            repo = project(root, f"{prefix}p{pool}", args.rows, pool, env)
            creates, removes = measure(repo, env, args.runs)
            show(f"WorktreeCreate, pool {'on ' if pool else 'off'}", creates)
            show(f"WorktreeRemove, pool {'on ' if pool else 'off'}", removes)
            wait_refills(repo)
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            names = [r[0] for r in conn.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                (prefix,)).fetchall()]
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
