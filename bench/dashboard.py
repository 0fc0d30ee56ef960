"""Benchmark: the dashboard, live, in a real headless Chromium.

    python bench/dashboard.py [--minutes 10] [--rounds 10] [--screenshot docs/dashboard.png]

A project with two worktrees (made by `branchyard up`) whose `web` service is a
tiny Python HTTP server, the proxy as its own process (`branchyard proxy run`),
and the dashboard open in Chromium. It reports:

- start → ready: from running `branchyard start` to the page showing "ready"
  (stamped on the page by a MutationObserver), over ``--rounds`` stop/start rounds;
- update latency: from a ledger write (a lock added) to the server-sent event
  that carries it, read by a plain event-stream client;
- the proxy's memory (RSS) sampled every 10 s for ``--minutes`` with the page
  and a logs view open and the service answering a request a second.

Without the services feature the first and the traffic are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "proxy"), str(ROOT)]

from dashkit import CONFIG, SERVER, EventReader  # noqa: E402
from proxykit import listen_port, wait_for  # noqa: E402
from test_chromium import DevTools  # noqa: E402

HAS_SERVICES = importlib.util.find_spec("branchyard.services") is not None
OBSERVE = """(() => { window.readyAt = 0; new MutationObserver(() => {
  const a = document.querySelectorAll('article.wt')[1];
  const s = a && a.querySelector('tr[data-service=web] .svc-state');
  if (s && s.textContent === 'ready' && !window.readyAt) window.readyAt = Date.now();
}).observe(document.body, {subtree: true, childList: true, characterData: true}); })()"""


def sh(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def branchyard(*args: str, cwd: Path, env: dict[str, str]) -> str:
    return sh([sys.executable, "-m", "branchyard", *args], cwd, env)


def make_project(root: Path, port: int, env: dict[str, str]) -> tuple[Path, list[Path]]:
    repo = root / "shop"
    repo.mkdir()
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
    sh([*git, "init", "-q", "-b", "main"], repo, env)
    (repo / "branchyard.toml").write_text(
        CONFIG.replace('name = "svc"', f'name = "shop"\n[proxy]\nport = {port}') + SQLITE)
    (repo / "server.py").write_text(SERVER)
    (repo / ".gitignore").write_text(".env*\ndata/\n")
    (repo / "README.md").write_text("shop\n")
    (repo / "data").mkdir()
    with sqlite3.connect(repo / "data" / "app.db") as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT)")
        db.executemany("INSERT INTO orders (note) VALUES (?)", [("x" * 200,)] * 2000)
    sh([*git, "add", "-A"], repo, env)
    sh([*git, "commit", "-qm", "initial"], repo, env)
    paths = []
    for branch in ("feat/checkout", "feat/search"):
        doc = json.loads(branchyard("up", branch, "--json", cwd=repo, env=env))
        paths.append(Path(doc["worktree"]["path"]))
    return repo, paths


SQLITE = """
[[database]]
name = "app"
engine = "sqlite"
source = "data/app.db"
"""


def stage(repo: Path, paths: list[Path], env: dict[str, str]) -> None:
    """Give the screenshot something to show: commits that conflict, a lock, an
    uncommitted file, an entry in the merge queue."""
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
    for path, text in zip(paths, ("checkout flow\n", "search box\n"), strict=True):
        (path / "README.md").write_text(text)
        sh([*git, "commit", "-qam", "edit the README"], path, env)
    (paths[1] / "search.py").write_text("# work in progress\n")
    branchyard("lock", "src/payments/", "--reason", "schema change", cwd=paths[0], env=env)
    subprocess.run([sys.executable, "-m", "branchyard", "conflicts"], cwd=repo, env=env,
                   capture_output=True, check=False)  # exit 3: it finds the conflict
    branchyard("queue", "add", "feat/search", cwd=repo, env=env)


def open_page(tools: DevTools, url: str) -> None:
    tools.call("Page.navigate", url=url)
    wait_for(lambda: tools.evaluate("document.readyState + ' ' + location.href")
             == f"complete {url}", timeout=20, what=f"{url} to load")
    wait_for(lambda: tools.evaluate("document.getElementById('live').textContent") == "live",
             timeout=20, what="the event stream")


def start_to_ready(tools: DevTools, repo: Path, rounds: int, env: dict[str, str]
                   ) -> list[float]:
    times = []
    for _ in range(rounds):
        branchyard("stop", "feat/checkout", cwd=repo, env=env)
        wait_for(lambda: tools.evaluate(
            "document.querySelectorAll('article.wt')[1].querySelector("
            "'tr[data-service=web] .svc-state').textContent") == "stopped", timeout=20,
            what="web to stop on the page")
        tools.evaluate(OBSERVE)
        began = time.time()
        branchyard("start", "feat/checkout", cwd=repo, env=env)
        ready_at = wait_for(lambda: tools.evaluate("window.readyAt"), timeout=30,
                            what="ready on the page")
        times.append(ready_at / 1000 - began)
    return times


def update_latency(port: int, repo: Path, rounds: int) -> list[float]:
    from branchyard.merge.locks import add_locks, remove_locks

    common = repo / ".git"
    events = EventReader(port, "shop.localhost", "/_branchyard/events")
    events.next()
    out = []
    try:
        for i in range(rounds):
            pattern = f"bench-{i}/"
            add_locks(common, "main", "bench", [pattern])
            began = time.monotonic()
            events.until(f"<code>{pattern}</code>", timeout=10)
            out.append(time.monotonic() - began)
            remove_locks(common, "main", [pattern], force=True)
            events.until("", timeout=10)
            time.sleep(0.3)
    finally:
        events.close()
    return out


def memory(proxy: psutil.Process, minutes: float, tools: DevTools, app_port: int | None
           ) -> list[tuple[float, int]]:
    samples = []
    began = time.monotonic()
    next_sample = began
    while time.monotonic() - began < minutes * 60:
        if app_port is not None:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{app_port}/tick", timeout=5).read()
        if time.monotonic() >= next_sample:
            samples.append((time.monotonic() - began, proxy.memory_info().rss))
            next_sample += 10
        time.sleep(1)
    samples.append((time.monotonic() - began, proxy.memory_info().rss))
    assert tools.evaluate("document.getElementById('live').textContent") == "live"
    return samples


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 3),
            "p95": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 3),
            "max": round(ordered[-1], 3), "n": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="by-dash-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "HOME": str(root), "BRANCHYARD_STATE_DIR": str(root / "state"),
               "GIT_CONFIG_NOSYSTEM": "1", "PYTHONPATH": str(ROOT / "src")}
        os.environ.update({k: env[k] for k in ("HOME", "BRANCHYARD_STATE_DIR")})
        port = listen_port()
        repo, paths = make_project(root, port, env)
        proxy_proc = subprocess.Popen(
            [sys.executable, "-m", "branchyard", "proxy", "run", "--port", str(port),
             "--no-https"], cwd=root, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        tools = DevTools(root / "chromium")
        report: dict[str, Any] = {}
        try:
            wait_for(lambda: _answers(port), timeout=20, what="the proxy")
            proxy = psutil.Process(proxy_proc.pid)
            report["rss_idle_mib"] = round(proxy.memory_info().rss / 2**20, 1)
            dash = f"http://shop.localhost:{port}/_branchyard/"
            tools.call("Emulation.setDeviceMetricsOverride", width=1280, height=860,
                       deviceScaleFactor=1, mobile=False)
            open_page(tools, dash)
            app_port = None
            if HAS_SERVICES:
                report["start_to_ready_s"] = summary(start_to_ready(tools, repo, args.rounds,
                                                                    env))
                app_port = int(json.loads(branchyard("env", "feat/checkout", "--json",
                                                     cwd=repo, env=env))["env"]["PORT"])
            report["update_latency_s"] = summary(update_latency(port, repo, args.rounds * 2))
            if args.screenshot:
                import base64

                stage(repo, paths, env)
                time.sleep(6)  # the uncommitted file shows on the next full refresh
                shot = tools.call("Page.captureScreenshot", format="png",
                                  captureBeyondViewport=True)
                args.screenshot.write_bytes(base64.b64decode(shot["data"]))
            samples = memory(proxy, args.minutes, tools, app_port)
            report["rss_mib"] = {"start": round(samples[0][1] / 2**20, 1),
                                 "max": round(max(s[1] for s in samples) / 2**20, 1),
                                 "end": round(samples[-1][1] / 2**20, 1),
                                 "minutes": args.minutes}
        finally:
            tools.close()
            for path in paths:
                subprocess.run([sys.executable, "-m", "branchyard", "stop", "--json"],
                               cwd=path, env=env, capture_output=True, check=False)
            proxy_proc.terminate()
            proxy_proc.wait(10)
            for path in paths:
                subprocess.run([sys.executable, "-m", "branchyard", "down", "--force",
                                str(path.name)], cwd=repo, env=env, capture_output=True,
                               check=False)
        print(json.dumps(report, indent=1))


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/", headers={"Host": "branchyard.localhost"}),
                timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    main()
