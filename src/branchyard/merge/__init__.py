"""Bringing parallel work back together: conflict radar, merge, merge queue, locks.

Everything here works on throw-away trees and scratch worktrees; the agents'
worktrees, their indexes and the main checkout's files are never touched
(except the main checkout's fast-forward when it is clean and on the base).
"""
