"""The repository: running git (``git``) and finding the repository, its main
worktree and its worktrees by name (``locate``)."""
