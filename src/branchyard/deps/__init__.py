"""Reusing installed dependency trees (node_modules, .venv, vendor/bundle, target)
across the worktrees of a repository instead of installing them again."""
