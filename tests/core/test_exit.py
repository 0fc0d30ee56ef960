"""How the program ends: at once once the command is done, with its exit code,
all of its output, and the exit handlers run; Python's own shutdown when a thread
it would wait for still runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROGRAM = """
import atexit, sys, threading, time
atexit.register(lambda: print("exit handler ran", flush=True))
if "--thread" in sys.argv:
    sys.argv.remove("--thread")
    def late() -> None:
        time.sleep(0.3)
        print("the thread finished", flush=True)
    threading.Thread(target=late).start()
print("before the command", end="")  # left unflushed in the buffer
from branchyard.cli.main import main
sys.exit(main())  # what the console script does
"""


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROGRAM, *args], cwd=tmp_path,
                          capture_output=True, text=True, check=False, timeout=60)


def test_the_program_ends_with_the_commands_code_and_all_its_output(tmp_path: Path) -> None:
    done = run(tmp_path, "path", "nope")  # not in a repository: an expected failure
    assert done.returncode == 1
    assert done.stdout == "before the command" + "exit handler ran\n"
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    ok = run(tmp_path, "--version")
    assert ok.returncode == 0
    assert ok.stdout.startswith("before the commandbranchyard, version ")
    assert ok.stdout.endswith("exit handler ran\n")


def test_a_thread_still_running_is_waited_for(tmp_path: Path) -> None:
    done = run(tmp_path, "--version", "--thread")
    assert done.returncode == 0
    assert done.stdout.endswith("the thread finished\nexit handler ran\n")
