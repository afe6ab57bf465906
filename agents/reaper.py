"""A reaper for the local Ray instance of a sweep: when the sweep's driver dies without shutting Ray down (a
SIGKILL, an out-of-memory kill), the helpers Ray started for it (raylet, GCS, its dashboard and runtime-env
agents, workers) would linger for a minute or more. The reaper, a small process of its own, watches the driver
and kills what the driver had started once it is gone.

    python -m syre_rl.agents.reaper PID      # what :func:`start_reaper` runs
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 0.5  # how often the reaper looks at the driver and reads /proc: cheap on a busy machine


def children() -> dict[int, int]:
    """pid -> parent pid of every process visible in /proc (Linux); empty elsewhere."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found[int(stat.parent.name)] = int(fields[1])
    return found


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now."""
    parents = children()
    below, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - below
        below |= frontier
    return below


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap(driver: int) -> None:
    """Watch ``driver``; when it is gone, kill every process it had started (as last seen)."""
    seen: set[int] = set()
    while alive(driver):
        seen = (seen | descendants(driver)) - {os.getpid()}
        time.sleep(POLL_S)
    parents = children()
    for pid in seen:  # still the same process: its parent is the driver's (orphans go to init) or one of ours
        if parents.get(pid) in seen | {driver, 1}:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def start_reaper() -> subprocess.Popen | None:
    """Start the reaper of this process (Linux only: it reads /proc); stop it with ``.kill()`` once Ray is shut
    down normally."""
    if not Path("/proc/self/stat").is_file():
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "syre_rl.agents.reaper", str(os.getpid())],
        start_new_session=True,  # not in the driver's process group: a Ctrl-C or kill of the group spares it
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    reap(int(sys.argv[1]))
