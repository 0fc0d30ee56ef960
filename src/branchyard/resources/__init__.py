"""What a worktree's resources are planned with and recorded as."""
