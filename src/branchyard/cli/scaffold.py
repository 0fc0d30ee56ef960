"""`init` and `conductor init`."""

from __future__ import annotations

from dataclasses import asdict

import click

from branchyard.cli.output import Reply, json_option, respond


@click.command()
@click.option("--force", is_flag=True, help="Replace an existing branchyard.toml.")
@click.option("--print", "print_only", is_flag=True, help="Print the config, write nothing.")
@json_option
def init(force: bool, print_only: bool, as_json: bool) -> None:
    """Write a starter branchyard.toml detected from the repository: env files,
    DATABASE_URL/PORT-like variables, the package manager, Conductor scripts."""
    from branchyard import scaffold
    from branchyard.repo import locate

    def body() -> Reply:
        main = locate().main_path
        if print_only:
            found = scaffold.detect(main)
            text = scaffold.render_config(found)
            return Reply({"config": text, "detected": asdict(found)}, text)
        path, found = scaffold.write_config(main, force=force)
        notes = "".join(f"note: {note}\n" for note in found.notes)
        return Reply({"path": str(path), "detected": asdict(found)},
                     f"wrote {path}\n{notes}"
                     "next: review it, commit it, then `branchyard up BRANCH`")

    respond("init", as_json, body)


@click.group()
def conductor() -> None:
    """Wiring for the Conductor agent app."""


@conductor.command("init")
@click.option("--force", is_flag=True, help="Replace existing Conductor settings.")
@json_option
def conductor_init(force: bool, as_json: bool) -> None:
    """Write .conductor/settings.toml and the legacy conductor.json so that
    setup → `branchyard setup`, run → `branchyard run -- <run hook>`,
    archive → `branchyard teardown`."""
    from branchyard import scaffold
    from branchyard.context import open_context

    def body() -> Reply:
        ctx = open_context(main_config=True)
        paths = scaffold.write_conductor(ctx.repo.main_path, ctx.config, force=force)
        return Reply({"written": [str(p) for p in paths]},
                     "\n".join(f"wrote {p}" for p in paths))

    respond("conductor init", as_json, body)
