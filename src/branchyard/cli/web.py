"""``branchyard proxy …``, ``url`` and ``browser``: dev URLs and isolated browsers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from branchyard.cli.output import EXIT_FAILED, Reply, json_option, note, respond
from branchyard.core.errors import NotARepoError

if TYPE_CHECKING:
    from branchyard.context import Context
    from branchyard.proxy.ca import CaInfo
    from branchyard.proxy.daemon import ProxySettings, ProxyStatus
    from branchyard.proxy.sites import Site


def _context() -> Context | None:
    from branchyard.context import open_context

    try:
        return open_context()
    except NotARepoError:
        return None


def _settings(port: int | None, https: bool | None) -> ProxySettings:
    from branchyard.proxy.daemon import ProxySettings

    ctx = _context()
    cfg = ctx.config.proxy if ctx is not None else None
    return ProxySettings(
        port=port if port is not None else (cfg.port if cfg else 1355),
        https=https if https is not None else (cfg.https if cfg else False))


def _register_here() -> None:
    from branchyard.proxy.registry import register_repo

    ctx = _context()
    if ctx is not None:
        register_repo(ctx.repo.common_dir)


def _status_text(status: ProxyStatus) -> str:
    scheme = "https" if status.https else "http"
    if status.state == "running":
        return f"proxy running (pid {status.pid}) on {scheme}://127.0.0.1:{status.port}"
    if status.state == "crashed":
        return f"proxy crashed: pid {status.pid} is gone (log: {status.log})"
    return "proxy not running"


def _routes() -> list[dict[str, Any]]:
    from branchyard.proxy.registry import known_repos, registry_path
    from branchyard.proxy.routes import RouteTable

    table = RouteTable(known_repos, registry_path())
    return [{"host": b.host, "port": b.port, "branch": b.branch, "worktree": b.worktree,
             "service": b.service} for site in table.sites() for b in site.hosts.values()]


port_option = click.option("--port", type=int, default=None,
                           help="Listen port (default: [proxy] port, 1355).")
https_option = click.option("--https/--no-https", default=None,
                            help="Serve HTTPS with the local CA (default: [proxy] https).")


@click.group()
def proxy() -> None:
    """The dev URL reverse proxy (http://<branch>.<project>.localhost:1355)."""


@proxy.command("start")
@port_option
@https_option
@json_option
def start(port: int | None, https: bool | None, as_json: bool) -> None:
    """Start the proxy in the background (reports the running one if started)."""
    def body() -> Reply:
        from branchyard.proxy.daemon import start_proxy

        _register_here()
        status = start_proxy(_settings(port, https))
        text = _status_text(status) + (" (already running)" if status.already_running
                                       else "")
        return Reply(data={"proxy": status.as_dict(),
                           "already_running": status.already_running}, text=text)
    respond("proxy start", as_json, body)


@proxy.command("stop")
@json_option
def stop(as_json: bool) -> None:
    """Stop the background proxy."""
    def body() -> Reply:
        from branchyard.proxy.daemon import stop_proxy

        status = stop_proxy()
        text = {"running": f"proxy stopped (pid {status.pid})",
                "crashed": "proxy was not running (stale pid file removed)"}.get(
                    status.state, "proxy was not running")
        return Reply(data={"proxy": status.as_dict(),
                           "stopped": status.state == "running"}, text=text)
    respond("proxy stop", as_json, body)


@proxy.command("status")
@json_option
def status(as_json: bool) -> None:
    """Is the proxy running, and which routes does it serve."""
    def body() -> Reply:
        from branchyard.core.errors import ProxyError
        from branchyard.proxy.daemon import proxy_status

        current = proxy_status()
        routes = _routes()
        lines = [_status_text(current)] + [
            f"  {r['host']} → 127.0.0.1:{r['port']}  {r['branch']}" for r in routes]
        errors = (ProxyError("the proxy crashed (its pid file names a process that is "
                             "gone)", hint=f"see {current.log}; `branchyard proxy start` "
                                           "starts it again"),) \
            if current.state == "crashed" else ()
        return Reply(data={"proxy": current.as_dict(), "routes": routes},
                     text="\n".join(lines), exit_code=EXIT_FAILED if errors else 0,
                     errors=errors)
    respond("proxy status", as_json, body)


@proxy.command("run")
@port_option
@https_option
def run(port: int | None, https: bool | None) -> None:
    """Run the proxy in the foreground (Ctrl-C stops it)."""
    def body() -> Reply:
        from branchyard.dashboard.app import Dashboard
        from branchyard.proxy.foreground import run_proxy

        settings = _settings(port, https)
        note(f"branchyard proxy listening on 127.0.0.1:{settings.port}")
        run_proxy(settings, Dashboard)
        return Reply(text="proxy stopped")
    respond("proxy run", False, body)


@proxy.command("trust")
@click.option("--install", is_flag=True,
              help="Also trust it in your browsers' store (Linux NSS; no sudo).")
@click.option("--rotate", is_flag=True,
              help="Make a new CA; the old one stops being used (re-trust the new one).")
@json_option
def trust(install: bool, rotate: bool, as_json: bool) -> None:
    """Make the local HTTPS CA and print the steps that make browsers trust it."""
    def body() -> Reply:
        from branchyard.proxy.ca import (
            ca_info,
            ensure_ca,
            install_user_trust,
            make_ca,
            untrust_steps,
        )
        from branchyard.proxy.daemon import proxy_dir, proxy_status

        tls_dir = proxy_dir() / "tls"
        ctx = _context()
        tlds = tuple(dict.fromkeys(("localhost", ctx.config.proxy.tld if ctx else "localhost")))
        ca_cert, _ = make_ca(tls_dir, tlds) if rotate else ensure_ca(tls_dir, tlds)
        info = ca_info(tls_dir)
        status = proxy_status()
        restart = rotate and status.state == "running" and status.https
        installed = str(install_user_trust(ca_cert)) if install else ""
        text, steps = _trust_text(info, rotate, installed, restart)
        return Reply(data={"ca_certificate": str(ca_cert), "steps": steps,
                           "installed": installed, "rotated": rotate,
                           "untrust_steps": untrust_steps() if rotate else [],
                           "not_after": info.not_after.isoformat(),
                           "permitted": list(info.permitted), "restart_proxy": restart},
                     text=text)
    respond("proxy trust", as_json, body)


def _trust_text(info: CaInfo, rotated: bool = False, installed: str = "",
                restart: bool = False) -> tuple[str, list[str]]:
    """(text for people, trust steps) about the CA ``info`` describes."""
    from branchyard.proxy.ca import trust_steps, untrust_steps

    steps = trust_steps(info.cert)
    scope = ", ".join(info.permitted) or "any name (an old CA without name constraints: " \
        "`branchyard proxy trust --rotate` makes one limited to the proxy's names)"
    lines = [f"local CA: {info.cert}", f"valid until {info.not_after:%Y-%m-%d}; it vouches "
             f"only for: {scope}"]
    if rotated:
        lines += ["", "made a new CA: browsers and tools that trusted the old one must "
                  "trust this one instead. Remove the old one where you added it:", "",
                  *untrust_steps(), "", "then trust the new one:"]
    text = "\n".join(lines) + "\n\n" + "\n\n".join(steps)
    if installed:
        text += f"\n\ninstalled in {installed} (Chromium/Chrome, Firefox: restart them)"
    if restart:
        text += ("\n\nthe running proxy still serves the old CA's certificates: "
                 "`branchyard proxy stop && branchyard proxy start`")
    return text, steps


def _site(branch: str | None) -> tuple[Context, Site]:
    from branchyard.context import open_context
    from branchyard.proxy.sites import find_site

    ctx = open_context()
    return ctx, find_site(ctx.repo.common_dir, ctx.repo.main_path, ctx.repo.project,
                          ctx.config, branch, ctx.loc.worktree)


def _site_data(site: Site) -> dict[str, Any]:
    return {"url": site.url, "host": site.host, "branch": site.branch, "slug": site.slug,
            "path": str(site.path), "port": site.port, "ports": dict(site.ports),
            "local_url": f"http://127.0.0.1:{site.port}" if site.port else ""}


@click.command()
@click.argument("branch", required=False)
@click.option("--open", "open_", is_flag=True, help="Open it in the default browser.")
@json_option
def url(branch: str | None, open_: bool, as_json: bool) -> None:
    """The dev URL of a worktree (default: the one you are in)."""
    def body() -> Reply:
        from branchyard.proxy.daemon import proxy_status, url_note

        ctx, site = _site(branch)
        state = proxy_status().state
        problem = url_note(ctx.config.proxy)
        if problem and not as_json:
            note(f"note: {problem}")
        if open_:
            import webbrowser

            webbrowser.open(site.url)
        return Reply(data={**_site_data(site), "proxy": state}, text=site.url)
    respond("url", as_json, body)


@click.command()
@click.argument("branch", required=False)
@click.option("--copy-login", is_flag=True,
              help="Seed the profile with the main worktree's cookies and storage.")
@click.option("--headless", is_flag=True, help="Run without a window.")
@click.option("--dry-run", is_flag=True, help="Print the command instead of running it.")
@json_option
def browser(branch: str | None, copy_login: bool, headless: bool, dry_run: bool,
            as_json: bool) -> None:
    """Open the worktree's URL in Chromium with the worktree's own profile."""
    def body() -> Reply:
        from branchyard.system import browser as web

        ctx, site = _site(branch)
        profile = web.profile_dir(ctx.repo.common_dir, site.slug)
        copied: list[str] = []
        if copy_login and site.slug is not None:
            copied = web.copy_login(web.profile_dir(ctx.repo.common_dir, None), profile)
        argv = web.browser_argv(web.find_browser(ctx.config.browser), profile, site.url,
                                headless=headless)
        pid = 0 if dry_run else web.launch(argv, profile, site.url).pid
        data = {**_site_data(site), "profile": str(profile), "command": list(argv),
                "pid": pid, "copied": copied}
        text = " ".join(argv) if dry_run else f"opened {site.url} (profile {profile})"
        return Reply(data=data, text=text)
    respond("browser", as_json, body)
