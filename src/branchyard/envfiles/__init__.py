"""Env files: reading main's, writing a worktree's override (values quoted so every
reader agrees), and the generated copies of shared files."""
