"""Running the install command, re-creating virtualenvs the tool's own way,
and the smoke check that proves a tree works."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from branchyard.core.errors import CommandError, ProviderError
from branchyard.system import external

SMOKE_TIMEOUT = 120.0
UV_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Runner:
    """How commands run: the full environment, where their output lines go,
    and how long an install may take (None: no limit)."""

    env: Mapping[str, str]
    on_line: Callable[[str], None]
    timeout: float | None = None


def run_install(command: str, cwd: Path, label: str, runner: Runner) -> None:
    """Run the user's install command (a shell string) in ``cwd``."""
    if not command:
        raise ProviderError(
            f"deps {label}: an install is needed but no install command is configured",
            hint=f'add install = "…" to the [[deps]] entry for {label} in branchyard.toml')
    external.run_hook(external.Hook(command, cwd, runner.env, f"deps {label} install",
                                    timeout=runner.timeout), on_line=runner.on_line)


def uv_available(lockfiles: tuple[str, ...]) -> bool:
    """uv re-creates a virtualenv from its cache in seconds, when it manages it."""
    return shutil.which("uv") is not None and any(
        Path(name).name == "uv.lock" for name in lockfiles)


def uv_sync(venv: Path, cwd: Path, runner: Runner) -> None:
    """``uv sync --frozen`` into ``venv`` (uv links packages from its own cache)."""
    env = {**runner.env, "UV_PROJECT_ENVIRONMENT": str(venv)}
    try:
        done = external.run(["uv", "sync", "--frozen"], cwd=cwd, env=env,
                        timeout=runner.timeout or UV_TIMEOUT)
    except CommandError as exc:
        raise ProviderError(f"deps {venv.name}: {exc.message}",
                            hint="run `uv sync` in the worktree to see why") from exc
    for line in (done.stderr + done.stdout).splitlines():
        runner.on_line(line)


def smoke_failure(command: str, cwd: Path, runner: Runner) -> str:
    """Run the smoke command; "" when it passed, else what went wrong."""
    if not command:
        return ""
    try:
        done = external.run(["sh", "-c", command], cwd=cwd, env=runner.env,
                        timeout=SMOKE_TIMEOUT, check=False)
    except CommandError as exc:
        return exc.message
    if done.returncode == 0:
        return ""
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return f"`{command}` exited with {done.returncode}" + (
        ": " + " / ".join(tail) if tail else "")


def is_virtualenv(tree: Path) -> bool:
    """Virtualenvs hold absolute paths (bin/activate, shebangs): never copied."""
    return (tree / "pyvenv.cfg").is_file() or tree.name in {".venv", "venv"}
