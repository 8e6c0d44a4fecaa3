"""Run a snippet of Python in a child process with a time and memory limit.

Hostile-file tests parse their crafted file there: a segfault, a hang or a
memory bomb then fails one test (non-zero exit, timeout) instead of killing
or freezing the whole test session.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(os.environ.get("EDGESAM_SANDBOX_SRC") or Path(__file__).resolve().parents[1] / "src")

# The child prints one line: OK, or the class name of the exception it raised.
_PRELUDE = """
import sys
def _report(call):
    try:
        call()
    except BaseException as err:
        print("RAISED", type(err).__name__, str(err)[:500].replace("\\n", " "))
        sys.exit(0)
    print("OK")
"""


def run_limited(code: str, *, seconds: float = 60.0, memory_bytes: int = 1536 * 1024 * 1024) -> str:
    """Run ``code`` (which calls ``_report(callable)``) in a limited child; return its line.

    Raises AssertionError when the child dies (signal, non-zero exit), runs
    past ``seconds``, or prints nothing.
    """

    def limit() -> None:  # runs in the child, before exec
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        cpu = int(seconds) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PRELUDE + textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=seconds,
            env=env,
            preexec_fn=limit,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"the child ran past {seconds} s (a hang)") from err
    assert done.returncode == 0, (
        f"the child died with exit status {done.returncode}\nstdout: {done.stdout[-2000:]}\n"
        f"stderr: {done.stderr[-2000:]}"
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"the child printed nothing; stderr: {done.stderr[-2000:]}"
    return lines[-1]
