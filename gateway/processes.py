"""Child processes that must not outlive the process that started them.

`die_with_parent(parent)` is called first thing in a child: on Linux it asks the kernel
(`PR_SET_PDEATHSIG`) to SIGKILL the child when its parent dies, so a `kill -9` of
`wicket serve` takes the whole node down, its role processes and their parse workers
alike, instead of leaving them listening or idling as orphans. Elsewhere it only checks
that the parent is still there.

A child may work for a process other than its parent: a node's role processes are forked
by the supervisor's fork server (gateway/cli/supervisor.py), which dies with the
supervisor (gateway/cli/fork_server.py). Such a child also names its `owner`, and exits
at once if the owner is already gone (a process that has exited but not been reaped
counts as gone).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, owner: int | None = None) -> None:
    """SIGKILL this process when `parent` dies (Linux); exit now if it or `owner` is already gone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the request was made
        os._exit(1)
    if owner is not None and not is_running(owner):
        os._exit(1)


def is_running(pid: int) -> bool:
    """Whether process `pid` exists and has not exited (a zombie has)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or another user's process has the number now
        return False
    with contextlib.suppress(OSError):  # Linux says whether it has exited and waits to be reaped
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        return state not in ("Z", "X")
    return True
