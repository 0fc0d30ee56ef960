"""`shell init`: a shell function so `branchyard cd X` / `up X --cd` move the shell."""

from __future__ import annotations

import click

from branchyard.cli.output import Reply, respond

POSIX = r'''branchyard() {
  local __by_cd __by_rc
  __by_cd="$(mktemp "${TMPDIR:-/tmp}/branchyard-cd.XXXXXX")" || return 1
  BRANCHYARD_CD_FILE="$__by_cd" command branchyard "$@"
  __by_rc=$?
  if [ -s "$__by_cd" ]; then cd -- "$(cat -- "$__by_cd")" || __by_rc=$?; fi
  rm -f -- "$__by_cd"
  return $__by_rc
}
'''

FISH = r'''function branchyard
    set -l __by_tmp /tmp
    set -q TMPDIR; and set __by_tmp $TMPDIR
    set -l __by_cd (mktemp $__by_tmp/branchyard-cd.XXXXXX)
    env BRANCHYARD_CD_FILE=$__by_cd branchyard $argv
    set -l __by_rc $status
    if test -s $__by_cd
        cd (cat $__by_cd); or set __by_rc $status
    end
    rm -f $__by_cd
    return $__by_rc
end
'''


@click.group()
def shell() -> None:
    """Shell integration."""


@shell.command("init")
@click.argument("kind", type=click.Choice(["bash", "zsh", "fish"]))
def init(kind: str) -> None:
    """Print the shell function; add `eval "$(branchyard shell init bash)"` to
    your shell's rc file (fish: `branchyard shell init fish | source`)."""
    respond("shell init", False, lambda: Reply({}, FISH if kind == "fish" else POSIX))
