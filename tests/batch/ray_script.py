"""Run in a subprocess by test_ray.py (so that a hung Ray cannot hang the suite).

``python ray_script.py SOURCE OUTPUT ENCODER DECODER KILL`` starts a local Ray
with two CPUs, runs ``run_batch_on_ray`` (segment everything, one actor) and,
with KILL=1, SIGKILLs the model actor's process once while it works. Prints
one JSON line: the summary and how many actors were killed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

REPORT_PREFIX = "edgesam-test-report: "


def _descendants(root: int) -> list[int]:
    """Pids of every process below ``root`` (this script's own Ray processes only)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _model_actor() -> int | None:
    for pid in _descendants(os.getpid()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "MapWorker" in command and "_Segmenter" in command:
            return pid
    return None


def main() -> None:
    import ray

    from edgesam.ray import run_batch_on_ray

    source, output, encoder, decoder, kill = sys.argv[1:6]
    ray.init(num_cpus=2, include_dashboard=False)
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 120
        first_seen = None
        while time.monotonic() < deadline:
            pid = _model_actor()
            if pid is not None and first_seen is None:
                first_seen = time.monotonic()
            # Let it load the model and start on the batches, then kill it mid-run.
            if pid is not None and first_seen is not None and time.monotonic() - first_seen > 0.5:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    if kill == "1":
        thread.start()
    summary = run_batch_on_ray(
        source,
        output,
        encoder=encoder,
        decoder=decoder,
        everything=True,
        everything_options={"points_per_side": 2},
        actors=1,
        num_cpus=0.5,
        batch_size=1,
    )
    # Ray forwards its workers' log lines to this stdout too: mark the report.
    print(
        REPORT_PREFIX
        + json.dumps(
            {
                "segmented": len(summary.segmented),
                "failed": summary.failed,
                "killed": len(killed),
            }
        )
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
