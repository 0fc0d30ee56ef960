"""`demo`."""

from __future__ import annotations

from dataclasses import asdict

import click

from branchyard.cli.output import Reply, json_option, respond


@click.command()
@click.option("--keep", is_flag=True, help="Leave the sample repo and worktrees to look at.")
@click.option("--no-database", is_flag=True, help="Skip the managed Postgres part.")
@json_option
def demo(keep: bool, no_database: bool, as_json: bool) -> None:
    """Build a sample repo in a temp dir, bring up two worktrees side by side,
    show what each got (paths, ports, env, URLs, databases), and tear them down."""
    from branchyard.cli.render import reporter_for
    from branchyard.demo import run_demo

    def body() -> Reply:
        result = run_demo(keep=keep, with_database=False if no_database else None,
                          reporter=reporter_for(as_json))
        return Reply(asdict(result), _text(result))

    respond("demo", as_json, body)


def _text(result: object) -> str:
    from branchyard.demo import DemoResult

    assert isinstance(result, DemoResult)
    keys = ("BRANCHYARD_SLUG", "PORT", "API_PORT", "BETTER_AUTH_URL", "API_URL",
            "DATABASE_URL", "STRIPE_KEY", "COMPOSE_PROJECT_NAME")
    lines = [f"sample repo: {result.repo}", ""]
    for wt in result.worktrees:
        lines += [f"── {wt.branch}", f"   path       {wt.path}", f"   url        {wt.url}",
                  f"   subdomain  {wt.subdomain}",
                  "   ports      " + " ".join(f"{k}={v}" for k, v in wt.ports.items())]
        for db in wt.databases:
            lines.append(f"   database   {db.get('database')} ({db.get('engine')}, "
                         f"{db.get('url')})")
        if wt.rows is not None:
            lines.append(f"   rows       {wt.rows} in its own copy of the sample table")
        lines.append("   env")
        lines += [f"     {k}={wt.env[k]}" for k in keys if k in wt.env]
        lines.append("")
    if result.kept:
        lines += ["kept for you to look at; when done:",
                  *(f"  branchyard down --force {wt.branch}   # run in {result.repo}"
                    for wt in result.worktrees)]
    else:
        lines.append("both worktrees were torn down: no directory, database, port lease "
                     "or ledger entry is left. Run with --keep to look around.")
    return "\n".join(lines)

