"""Running Wicket: the roles of one process, and a node of several processes.

Every node is stateless apart from the database, so any number of processes may run any
mix of roles: `smtp` (the listener), `worker` (the inbound processor), `outbox` (outbound
delivery) and `portal` (the web portal). The webhook worker runs with `worker` and with
`outbox`, so the node that wrote an event posts it the moment its transaction commits.
`serve` runs roles in this process. Plain `wicket serve` and `--workers N` run a node of
several processes instead (`serve_node`, through gateway/cli/supervisor.py): child
processes bind the same SMTP and HTTP ports with SO_REUSEPORT, the kernel spreads
connections over them, and listeners wake the processing processes through the node's
doorbell (gateway/cli/doorbell.py).

The portal is handed in as a starter function by the command line, so this module (like
the whole gateway package) does not import the portal. Each process builds one `Gateway`
whatever its roles, and the portal is started on that Gateway's database and its one
`Processor`, so `--role portal` alone still processes portal replies and requests at once.

The gateway itself (`RUNTIME`) is imported when roles are served, not with this module:
the supervisor of a node only starts processes, and its children's fork server imports
it once for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from gateway.cli.doorbell import Doorbell
from gateway.cli.supervisor import ROLES, Slot, Supervisor
from gateway.logs import configure_logging
from gateway.settings import Settings

log = logging.getLogger(__name__)

RUNTIME = "gateway.cli.runtime"  # every role's code, through `Gateway`
PortalStarter = Callable[..., Awaitable[Any]]


async def serve(
    settings: Settings,
    roles: Iterable[str] = ROLES,
    *,
    start_portal: PortalStarter | None = None,
    reuse_port: bool = False,
    ready: Callable[[], None] | None = None,
    doorbell: Doorbell | None = None,
    stop_signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM),
) -> None:
    """Run the given roles until one of `stop_signals`."""
    roles = set(roles)
    unknown = roles - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in stop_signals:
        loop.add_signal_handler(signum, stop.set)
    from gateway.cli.runtime import Gateway

    gateway = Gateway(settings, doorbell=doorbell)
    portal_runner = None
    try:
        await gateway.start()
        if "smtp" in roles:
            await gateway.serve_smtp(reuse_port=reuse_port)
            log.info("SMTP listening on %s:%d", settings.smtp_host, settings.smtp_port)
        if "worker" in roles:
            gateway.run_processor()
        if "outbox" in roles:
            gateway.run_outbox()
        if roles & {"worker", "outbox"}:
            gateway.run_webhooks()  # events are written by the processor's changes, posted from here at once
        if "portal" in roles and start_portal is not None:
            portal_runner = await start_portal(
                settings, gateway.db, processor=gateway.processor, reuse_port=reuse_port
            )
            log.info("portal on http://%s:%d (public URL %s)", settings.http_host, settings.http_port,
                     settings.public_url)
        if ready is not None:
            ready()
        await stop.wait()
    finally:
        if portal_runner is not None:
            await portal_runner.cleanup()
        await gateway.stop()
        await gateway.db.dispose()


def run_child(
    settings: Settings,
    roles: tuple[str, ...],
    start_portal: PortalStarter | None,
    log_format: str,
    log_level: int,
    doorbell: Doorbell,
    *,
    ready: Callable[[], None],
) -> None:
    """A node's child process: its roles until SIGTERM (Ctrl-C is the supervisor's to decide)."""
    configure_logging(log_format, log_level)
    try:
        asyncio.run(serve(settings, roles, start_portal=start_portal, reuse_port=True, ready=ready,
                          doorbell=doorbell, stop_signals=(signal.SIGTERM,)))
    except Exception as error:  # noqa: BLE001 - the supervisor reports the exit; one line, no traceback
        log.critical("%s could not run: %s", "+".join(roles), error, exc_info=log.isEnabledFor(logging.DEBUG))
        raise SystemExit(1) from None


def serve_node(
    settings: Settings,
    slots: list[Slot],
    *,
    start_portal: PortalStarter | None,
    log_format: str,
    log_level: int,
    ready: Callable[[], None] | None = None,
    preload: Iterable[str] = (),
) -> int:
    """Run `slots` as child processes under a supervisor; returns the exit status.

    `preload`: modules the children's fork server imports once, beside this one and the gateway.
    """

    def child_args(slot: Slot, doorbell: Doorbell) -> tuple[Any, ...]:
        return settings, slot.roles, start_portal, log_format, log_level, doorbell

    return Supervisor(slots, run_child, child_args, on_ready=ready, preload=(__name__, RUNTIME, *preload)).run()
