"""The live dashboard the proxy serves: every worktree, its services, databases,
git state, conflicts, locks and the merge queue, updated by server-sent events.

``<project>.<tld>:<port>/_branchyard/`` shows one repository,
``branchyard.<tld>:<port>/`` every repository the proxy knows. The proxy hands
such requests to :class:`~branchyard.dashboard.app.Dashboard`.
"""
