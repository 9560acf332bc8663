"""Processes of one search: its process tree, and the trial workers in it; free ports."""

import contextlib
import os
import signal
import socket
from pathlib import Path


def descendants(root: int) -> set[int]:
    """``root`` and every process below it (Ray's servers and workers of a search)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, grew = {root}, True
    while grew:
        new = {pid for pid, ppid in parents.items() if ppid in tree} - tree
        tree |= new
        grew = bool(new)
    return tree


def trial_pids(root: int) -> list[int]:
    """Processes of ``root``'s tree running a Tune function trainable (ray::ImplicitFunc...);
    never another search's, when several run on one machine."""
    pids = []
    for pid in sorted(descendants(root)):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"ray::ImplicitFunc"):
            pids.append(pid)
    return pids


def kill_tree(root: int) -> None:
    """SIGKILL ``root`` and everything below it at once: a driver and the Ray instance it
    started, and no other (``ray stop --force`` would stop every Ray on the machine)."""
    for pid in descendants(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def ray_pids() -> set[int]:
    """Every process on the machine running a Ray program (GCS, raylet, dashboard, monitors):
    to tell which ones a `ray start` made."""
    pids = set()
    for proc in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmd = proc.read_bytes()
        except OSError:
            continue
        if b"/site-packages/ray/" in cmd:
            pids.add(int(proc.parent.name))
    return pids


def free_port() -> int:
    """A loopback port nothing listens on (closed again when this returns)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
