"""Running git calls side by side: the work is subprocesses, so threads suffice."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 8


def parallel_map(func: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``map`` over a few threads, results in order."""
    todo = list(items)
    if len(todo) <= 1:
        return [func(item) for item in todo]
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(todo))) as pool:
        return list(pool.map(func, todo))
