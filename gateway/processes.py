"""Child processes that must not outlive the process that started them.

`die_with_parent(parent)` is called first thing in a child: on Linux it asks the kernel
(`PR_SET_PDEATHSIG`) to SIGKILL the child when its parent dies, so a `kill -9` of
`wicket serve` takes the whole node down, its role processes and their parse workers
alike, instead of leaving them listening or idling as orphans. Elsewhere it only checks
that the parent is still there.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when `parent` dies (Linux); exit now if it is already gone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the request was made
        os._exit(1)
