"""The node supervisor: one `wicket serve` as several processes, kept running together.

Plain `wicket serve` lays a node out over the machine's cores (`node_layout`; the reasons
are in docs/architecture.md, "One node, several processes"): the roles that answer the
network, SMTP and the portal, run in one *front* process per core, all bound to the same
ports with SO_REUSEPORT, so a burst of mail is accepted on every core; the processor (and
any other background role) runs in *back* processes of its own, so processing never
delays a 250 in the same event loop; and the outbox worker runs in one process per core,
at a lower priority, composing mail on whatever the others leave. `--workers N` instead
runs N processes with the same roles.

The supervisor (this process) only starts, watches and stops children. Each child reports
when its roles are running. A child that exits before that could not start (a database
without tables, a port taken): the node stops at once with exit status 1, since starting
it again would fail the same way. A child that dies later is started again, up to
`RESTARTS` times within `RESTART_WINDOW` seconds; one more death within the window stops
the node with exit status 1, loudly, rather than crash-looping. SIGINT (Ctrl-C) and SIGTERM
stop every child with SIGTERM, wait for them and exit 0. Children die with the supervisor
(`PR_SET_PDEATHSIG` on Linux): a `kill -9` of the supervisor takes the node down whole, as
a power cut would, instead of leaving listeners behind.

Children are forked from a fork server (multiprocessing's `forkserver`), a process the
supervisor starts first that imports the modules a role process needs (`preload`) once
and forks a child for each start: a new child, at start or after a crash, is running in
a fraction of a second, where a spawned one imported everything again (all of them at
once when a node starts; the figures are in docs/architecture.md). The fork server runs
no thread, no event loop and no connection, so a child inherits nothing held. It dies
with the supervisor (gateway/cli/fork_server.py), and its children die with it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from gateway.cli.doorbell import Doorbell
from gateway.processes import die_with_parent

log = logging.getLogger(__name__)

ROLES = ("smtp", "worker", "outbox", "portal")
FRONT_ROLES = ("smtp", "portal")  # answer the network; every other role drains a queue
RESTARTS, RESTART_WINDOW = 5, 60.0
STOP_SECONDS = 30.0
FORK_SERVER_GUARD = "gateway.cli.fork_server"


# Under load the kernel gives the cores to the front processes first, then to processing,
# then to the outbox: mail is acknowledged, then its ticket becomes visible, then its mail
# is composed (measured in bench/RESULTS.md, "session 5").
BACK_NICENESS = 5
OUTBOX_NICENESS = 10


@dataclass(frozen=True, slots=True)
class Slot:
    """A process the node keeps running: its name, its roles and its niceness."""

    name: str
    roles: tuple[str, ...]
    niceness: int = 0


def node_layout(roles: Iterable[str], cores: int, *, sqlite: bool) -> list[Slot]:
    """Plain `wicket serve`: a front process per core, back processes for the queues.

    Processing: on SQLite one process, as the database has one writer and a second
    processing process only takes turns with the first; on PostgreSQL one per two cores;
    behind the front processes (`BACK_NICENESS`). The outbox: one process per core,
    behind processing (`OUTBOX_NICENESS`). Composing mail costs about three times what
    processing a message does, and it holds no lock.
    """
    chosen = tuple(roles)
    front = tuple(role for role in chosen if role in FRONT_ROLES)
    back = tuple(role for role in chosen if role not in FRONT_ROLES and role != "outbox")
    slots = [Slot(f"front-{n + 1}", front) for n in range(max(1, cores))] if front else []
    backs = 1 if sqlite else max(1, cores // 2)
    slots += [Slot(f"back-{n + 1}", back, BACK_NICENESS) for n in range(backs)] if back else []
    if "outbox" in chosen:
        slots += [Slot(f"outbox-{n + 1}", ("outbox",), OUTBOX_NICENESS) for n in range(max(1, cores))]
    return slots


def same_roles(roles: Iterable[str], workers: int) -> list[Slot]:
    """`--workers N`: N processes running the same roles."""
    chosen = tuple(roles)
    return [Slot(f"wicket-{n + 1}", chosen) for n in range(workers)]


@dataclass
class RestartBudget:
    """At most `limit` restarts of one slot within `window` seconds."""

    limit: int = RESTARTS
    window: float = RESTART_WINDOW
    times: deque[float] = field(default_factory=deque)

    def spend(self, now: float) -> bool:
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return False
        self.times.append(now)
        return True


# The child's side. `run_roles` is the function that serves roles in one process
# (gateway/cli/serve.py), passed in so this module stays below it.
ChildTarget = Callable[..., None]


def _child_main(owner: int, target: ChildTarget, ready: Connection, args: tuple[Any, ...], niceness: int = 0) -> None:
    # The parent is the fork server, which dies with `owner`, the supervisor.
    die_with_parent(os.getppid(), owner=owner)
    if niceness:
        os.nice(niceness)  # inherited by the process's own workers (parse-ahead)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group; the supervisor decides
    target(*args, ready=lambda: ready.send(True))


@dataclass
class _Child:
    slot: Slot
    process: BaseProcess
    ready: Connection
    started: bool = False


class Supervisor:
    """Runs `slots` as child processes until SIGINT or SIGTERM; `run` returns the exit status."""

    def __init__(
        self,
        slots: list[Slot],
        target: ChildTarget,
        args: Callable[[Slot, Doorbell], tuple[Any, ...]],
        *,
        on_ready: Callable[[], None] | None = None,
        preload: Iterable[str] = (),
    ) -> None:
        self._slots = slots
        self._target = target
        self._args = args
        self._on_ready = on_ready
        self._context = multiprocessing.get_context("forkserver")
        # Read when the fork server starts; the first makes it die with this process.
        self._context.set_forkserver_preload([FORK_SERVER_GUARD, *preload])
        self._doorbell = Doorbell(self._context)
        self._children: dict[str, _Child] = {}
        self._budgets = {slot.name: RestartBudget() for slot in slots}
        self._stopping = False
        self._announced = False

    def run(self) -> int:
        previous = {signum: signal.signal(signum, self._stop_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            for slot in self._slots:
                self._start(slot)
            status = self._watch()
        finally:
            self._stop_children()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return status

    def _start(self, slot: Slot) -> None:
        reader, writer = self._context.Pipe(duplex=False)
        args = (os.getpid(), self._target, writer, self._args(slot, self._doorbell), slot.niceness)
        process = self._context.Process(target=_child_main, args=args, name=f"wicket-{slot.name}")
        process.start()
        writer.close()
        self._children[slot.name] = _Child(slot, process, reader)

    def _watch(self) -> int:
        while not self._stopping:
            by_handle: dict[Any, tuple[str, _Child]] = {}
            for child in self._children.values():
                by_handle[child.process.sentinel] = ("exit", child)
                if not child.started:
                    by_handle[child.ready] = ("ready", child)
            for handle in wait(list(by_handle), timeout=1.0):
                kind, child = by_handle[handle]
                if kind == "ready":
                    self._started(child)
                elif not self._stopping and not self._replace(child):
                    return 1
        return 0

    def _started(self, child: _Child) -> None:
        with contextlib.suppress(EOFError, OSError):
            child.ready.recv()
            child.started = True
        if not self._announced and all(c.started for c in self._children.values()):
            self._announced = True
            log.info("node running: %s", ", ".join(f"{c.slot.name} ({'+'.join(c.slot.roles)}, pid {c.process.pid})"
                                                   for c in self._children.values()))
            if self._on_ready is not None:
                self._on_ready()

    def _replace(self, child: _Child) -> bool:
        """A child exited on its own: start it again if it may be; False stops the node."""
        child.process.join()
        code, name = child.process.exitcode, child.slot.name
        child.ready.close()
        if not child.started:
            log.critical("%s (%s) exited with status %s before it was running; stopping the node",
                         name, "+".join(child.slot.roles), code)
            return False
        if not self._budgets[name].spend(time.monotonic()):
            log.critical("%s died %d times within %.0f s (last status %s); stopping the node",
                         name, RESTARTS + 1, RESTART_WINDOW, code)
            return False
        log.error("%s (pid %s) exited with status %s; starting it again", name, child.process.pid, code)
        self._start(child.slot)
        return True

    def _stop_signal(self, signum: int, _frame: object) -> None:
        self._stopping = True
        for child in self._children.values():
            if child.process.is_alive():
                with contextlib.suppress(OSError):
                    os.kill(child.process.pid or 0, signal.SIGTERM)

    def _stop_children(self) -> None:
        for child in self._children.values():
            if child.process.is_alive():
                child.process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for child in self._children.values():
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.is_alive():
                log.error("%s did not stop within %.0f s; killing it", child.slot.name, STOP_SECONDS)
                child.process.kill()
                child.process.join()
