"""Streaming one command's output into another (``pg_dump | pg_restore``).

:mod:`branchyard.system.external` runs single commands; a dump is gigabytes, so it is
streamed between two processes instead of being held in memory.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence

from branchyard.core.errors import CommandError, CommandTimeoutError


def run_pipe(producer: Sequence[str], consumer: Sequence[str], *,
             env: Mapping[str, str], timeout: float = 3600.0,
             line_filter: Callable[[bytes], bytes] | None = None) -> None:
    """Run ``producer | consumer``; raise :class:`CommandError` naming the side
    that failed. On any interruption both processes are killed and reaped.
    ``line_filter`` rewrites each line on the way (through this process)."""
    with tempfile.TemporaryFile() as err_a, tempfile.TemporaryFile() as err_b:
        first = subprocess.Popen(list(producer), stdout=subprocess.PIPE, stderr=err_a,
                                 stdin=subprocess.DEVNULL, env=dict(env))
        try:
            second = subprocess.Popen(list(consumer),
                                      stdin=subprocess.PIPE if line_filter else first.stdout,
                                      stdout=subprocess.DEVNULL, stderr=err_b, env=dict(env))
        except BaseException:
            _reap(first)
            raise
        assert first.stdout is not None
        try:
            if line_filter is not None:
                _pump(first, second, line_filter)
            else:
                first.stdout.close()  # the consumer holds the only read end now
            second.wait(timeout=timeout)
            first.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _reap(first, second)
            raise CommandTimeoutError(list(producer), -1,
                                      f"timed out after {timeout:g} s") from exc
        except BaseException:
            _reap(first, second)
            raise
        for proc, argv, err in ((first, producer, err_a), (second, consumer, err_b)):
            if proc.returncode != 0:
                err.seek(0)
                raise CommandError(list(argv), proc.returncode,
                                   err.read().decode("utf-8", "replace")[-4000:])


def _pump(first: subprocess.Popen[bytes], second: subprocess.Popen[bytes],
          line_filter: Callable[[bytes], bytes]) -> None:
    assert first.stdout is not None
    assert second.stdin is not None
    # a consumer that failed closes the pipe: its exit code says why
    with contextlib.suppress(BrokenPipeError), first.stdout, second.stdin:
        for line in first.stdout:
            second.stdin.write(line_filter(line))


def _reap(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
