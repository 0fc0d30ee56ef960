"""Supervised dev servers ("services") of a worktree, and their logs.

A worktree's services run under one small detached supervisor process
(:mod:`~branchyard.services.supervisor`) that the CLI starts and talks to through
files in the worktree's service directory (:mod:`~branchyard.services.state`):
``plan.json`` says what should run (written by the API), ``state.json`` says what
does (written by the supervisor), ``logs/`` holds each service's output
(:mod:`~branchyard.services.logs`). :mod:`~branchyard.services.status` is the
typed read API (``ls``, ``status``, the proxy's 502 page, a dashboard).
"""
