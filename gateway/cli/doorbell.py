"""The doorbell: a listener process tells the node's processing processes that mail was stored.

In one process the store wakes the processor directly. When `wicket serve` splits a node
into processes (gateway/cli/supervisor.py), the listener that committed a message and the
processor that should pick it up live apart, and without a signal the processor would only
find the row at its next poll (`process_poll_seconds`, a second by default), which is most
of the delay between a 250 and the ticket appearing. The doorbell is one
`multiprocessing` event shared by the node's processes: listeners `ring` it after every
commit, and a thread in each processing process waits on it and wakes that process's
processor. Nothing depends on it for correctness: a lost ring costs one poll interval.
It only reaches processes of the same node; other nodes on a shared PostgreSQL poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

LISTEN_TIMEOUT = 0.5  # how soon a listening thread notices that its process is stopping


class Doorbell:
    """One event for a node's processes; made by the supervisor, handed to each child it starts."""

    def __init__(self, context: BaseContext) -> None:
        self._event = context.Event()

    def ring(self) -> None:
        self._event.set()

    def listen(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call `wake` on the running event loop whenever the bell rings; returns `stop`."""
        import asyncio  # here, not above: `wicket --help` loads this module but needs no asyncio

        loop = asyncio.get_running_loop()
        stopping = threading.Event()

        def wait_for_rings() -> None:
            while not stopping.is_set():
                if self._event.wait(LISTEN_TIMEOUT):
                    # Cleared before the wake-up: a ring that follows is never lost.
                    self._event.clear()
                    try:
                        loop.call_soon_threadsafe(wake)
                    except RuntimeError:  # the loop closed while this thread waited
                        return

        threading.Thread(target=wait_for_rings, name="doorbell", daemon=True).start()
        return stopping.set
