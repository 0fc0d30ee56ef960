"""branchyard's dev URL reverse proxy: routes ``<subdomain>.<project>.localhost``
to the worktree's app port, reading routes from each repository's ledger."""
