"""Agent-app wiring (Claude Code, Codex, Cursor, Conductor) and the hook entry
points those apps call. One module per app; :mod:`.wiring` runs them."""
