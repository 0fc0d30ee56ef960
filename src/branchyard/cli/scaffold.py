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
    from branchyard.agents.wiring import detect_apps
    from branchyard.repo.locate import locate

    def body() -> Reply:
        main = locate().main_path
        if print_only:
            found = scaffold.detect(main)
            text = scaffold.render_config(found)
            return Reply({"config": text, "detected": asdict(found)}, text)
        path, found = scaffold.write_config(main, force=force)
        notes = "".join(f"note: {note}\n" for note in found.notes)
        apps = detect_apps(main)
        text = f"wrote {path}\n{notes}next: review it, commit it, then `branchyard up BRANCH`"
        if apps:
            text += (f"\nagent apps found ({', '.join(apps)}): wire them with "
                     f"`branchyard agents init --only {','.join(apps)}`")
        return Reply({"path": str(path), "detected": asdict(found),
                      "agents": list(apps)}, text)

    respond("init", as_json, body)


@click.group()
def conductor() -> None:
    """Wiring for the Conductor agent app."""


@conductor.command("init")
@click.option("--force", is_flag=True, help="Replace Conductor scripts of yours that conflict.")
@json_option
def conductor_init(force: bool, as_json: bool) -> None:
    """Same as `branchyard agents init --only conductor`: setup → `branchyard
    setup`, run → `branchyard run` (the run hook), archive → `branchyard teardown`."""
    from branchyard.cli.agents import init_reply

    respond("conductor init", as_json, lambda: init_reply("conductor", force))
