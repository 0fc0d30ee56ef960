"""Launching a browser with a worktree's own profile, so sessions never mix.

Each worktree's profile lives under the machine-wide state dir; the main
worktree's profile is ``main``. ``copy_login`` seeds a profile from the main
one (cookies, Local Storage, the key they are encrypted with), so an agent
starts logged in to the services the main profile was logged in to.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from branchyard.config.model import BrowserConfig
from branchyard.core.errors import BranchyardError
from branchyard.core.identity import short_hash
from branchyard.core.paths import state_dir

MAIN_PROFILE = "main"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
              "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
              "/Applications/Chromium.app/Contents/MacOS/Chromium")
# What makes a login: cookies, web storage, and the key Chromium encrypts cookies with.
LOGIN_FILES = ("Local State", "Default/Cookies", "Default/Cookies-journal",
               "Default/Network/Cookies", "Default/Network/Cookies-journal",
               "Default/Local Storage", "Default/Session Storage", "Default/IndexedDB")
HEADLESS_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--no-first-run")


class BrowserError(BranchyardError):
    code = "browser"


@dataclass(frozen=True)
class Launch:
    argv: tuple[str, ...]
    profile: Path
    url: str
    pid: int = 0


def profiles_root(common_dir: Path) -> Path:
    """``<state>/browsers/<repo-hash>``: every profile of one repository."""
    return state_dir() / "browsers" / short_hash(str(common_dir.resolve()), 12)


def profile_dir(common_dir: Path, slug: str | None) -> Path:
    """A worktree's profile directory (``None``: the main worktree's)."""
    return profiles_root(common_dir) / (slug or MAIN_PROFILE)


def remove_profile(profile: Path) -> None:
    """Delete a profile folder, then its repository's folder and ``browsers``
    itself once they are empty (only inside the state dir's ``browsers``)."""
    shutil.rmtree(profile, ignore_errors=True)
    top = state_dir() / "browsers"
    folder = profile.parent
    while folder == top or top in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (another worktree's profile), or gone
            return
        folder = folder.parent


def session_name(project: str, slug: str | None) -> str:
    """``myapp-feat_x_1a2b3c`` (the seed's agent-browser session name); main: ``myapp``."""
    return f"{project}-{slug}" if slug else project


def find_browser(cfg: BrowserConfig) -> str:
    """The configured browser, or the first Chromium-family one installed."""
    for candidate in ((cfg.command,) if cfg.command else CANDIDATES):
        found = shutil.which(candidate) or (candidate if os.access(candidate, os.X_OK)
                                            else None)
        if found:
            return found
    if cfg.command:
        raise BrowserError(f"the browser `{cfg.command}` set in [browser] command "
                           "is not installed", hint="fix [browser] command")
    raise BrowserError("no Chromium or Chrome found",
                       hint="install one (Debian: apt-get install chromium) or set "
                            "[browser] command in branchyard.toml")


def browser_argv(command: str, profile: Path, url: str, *, headless: bool = False,
                 extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    flags = HEADLESS_FLAGS if headless else ("--no-first-run", "--no-default-browser-check")
    # basic password store: cookies copied between profiles stay readable
    return (command, *flags, f"--user-data-dir={profile}", "--password-store=basic",
            *extra, url)


def launch(argv: tuple[str, ...], profile: Path, url: str) -> Launch:
    """Start the browser detached from this process; its output goes to the profile."""
    profile.mkdir(parents=True, exist_ok=True)
    with (profile / "branchyard-browser.log").open("ab") as log:
        try:  # cwd: the profile, so stopping the worktree's dev servers spares it
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True, close_fds=True, cwd=profile)
        except OSError as exc:
            raise BrowserError(f"cannot start `{argv[0]}`: {exc.strerror or exc}",
                               hint="check [browser] command") from exc
    return Launch(argv, profile, url, proc.pid)


def copy_login(source: Path, target: Path) -> list[str]:
    """Copy the login state of profile ``source`` into ``target``; the names copied.

    The target's own files of the same names are replaced; nothing else in it
    changes. Copying while the source browser runs may catch a half-written
    database: close that browser first.
    """
    if not source.is_dir():
        raise BrowserError(f"the main worktree has no browser profile yet ({source})",
                           hint="run `branchyard browser` in the main worktree and log in "
                                "first")
    copied: list[str] = []
    for name in LOGIN_FILES:
        src, dst = source / name, target / name
        if not src.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_dir():
            shutil.rmtree(dst)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("LOCK"))
        else:
            shutil.copy2(src, dst)
        copied.append(name)
    return copied


def close_browsers(profile: Path, timeout: float = 5.0) -> list[int]:
    """Stop the browsers running on ``profile`` (TERM, then KILL); their pids.

    A browser is recognised by the exact ``--user-data-dir=<profile>`` argument
    branchyard gave it, so nothing else is touched.
    """
    import psutil

    flag = f"--user-data-dir={profile}"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if flag in (proc.info.get("cmdline") or ()):
            found.append(proc)
    for proc in found:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(found, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=timeout)
    return [p.pid for p in found]
