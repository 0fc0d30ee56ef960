"""The one error family of branchyard.

``str(err)`` is what the user sees; ``err.hint`` says what to do about it and
``err.code`` is the stable machine-readable name used in ``--json`` output.

Exit codes (``err.exit_code``; the CLI's constants are in ``cli/output.py``):
0 ok, 1 expected failure, 2 usage error, 3 a conflict or lock was found,
4 partly done (:class:`PartialError`: what is left is kept in the ledger for
``doctor --fix``), 70 internal error, 130 interrupted.
"""

from __future__ import annotations


class BranchyardError(Exception):
    """Base of every expected failure. The CLI maps it to exit code 1."""

    code = "error"
    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(BranchyardError):
    """The command was called wrongly (exit 2)."""

    code = "usage"
    exit_code = 2


class PartialError(BranchyardError):
    """The command did what it could and kept the rest for `doctor --fix` (exit 4)."""

    code = "partial"
    exit_code = 4


class GitError(BranchyardError):
    code = "git"


class NotARepoError(GitError):
    code = "not_a_repo"


class ConfigError(BranchyardError):
    code = "config"


class LedgerError(BranchyardError):
    code = "ledger"


class CommandError(BranchyardError):
    """An external command failed; the message carries argv, exit code and stderr."""

    code = "command"

    def __init__(
        self, argv: list[str], returncode: int, stderr: str, hint: str = ""
    ) -> None:
        shown = " ".join(argv)
        tail = stderr.strip()
        message = f"`{shown}` failed with exit code {returncode}"
        if tail:
            message += f":\n{tail}"
        super().__init__(message, hint)
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


class CommandTimeoutError(CommandError):
    code = "timeout"


class WorktreeError(BranchyardError):
    code = "worktree"


class RepairDeferredError(BranchyardError):
    """`doctor --fix` left something for later: its owner is still at work on it."""

    code = "deferred"


class UnsafeError(BranchyardError):
    """Refused because it would lose something the user made (use --force)."""

    code = "unsafe"


class PortError(BranchyardError):
    code = "ports"


class ProviderError(BranchyardError):
    code = "provider"


class DatabaseError(ProviderError):
    code = "database"


class HookError(BranchyardError):
    code = "hook"


class ProxyError(BranchyardError):
    code = "proxy"


class MergeError(BranchyardError):
    code = "merge"


class ConflictError(MergeError):
    code = "conflict"


class ServiceError(BranchyardError):
    code = "service"
