"""Running Wicket: roles in one process, and N processes sharing the ports.

Every node is stateless apart from the database, so any number of processes may run any
mix of roles: `smtp` (the listener), `worker` (the inbound processor), `outbox` (outbound
delivery) and `portal` (the web portal). The webhook worker runs with `worker` and with
`outbox`, so the node that wrote an event posts it the moment its transaction commits.
With `workers > 1` the parent starts that many child processes that bind the same SMTP
and HTTP ports with SO_REUSEPORT, and the kernel spreads connections over them; the
parent only supervises and forwards SIGTERM.

The portal is handed in as a starter function by the command line, so this module (like
the whole gateway package) does not import the portal. Each process builds one `Gateway`
whatever its roles, and the portal is started on that Gateway's database and its one
`Processor`, so `--role portal` alone still processes portal replies and requests at once.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from gateway.cli.runtime import Gateway
from gateway.settings import Settings

log = logging.getLogger(__name__)

ROLES = ("smtp", "worker", "outbox", "portal")
PortalStarter = Callable[..., Awaitable[Any]]


async def serve(
    settings: Settings,
    roles: Iterable[str] = ROLES,
    *,
    start_portal: PortalStarter | None = None,
    reuse_port: bool = False,
    ready: Callable[[], None] | None = None,
) -> None:
    """Run the given roles until SIGINT or SIGTERM."""
    roles = set(roles)
    unknown = roles - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    gateway = Gateway(settings)
    await gateway.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    portal_runner = None
    try:
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


def _child(settings: Settings, roles: list[str], start_portal: PortalStarter | None) -> None:
    asyncio.run(serve(settings, roles, start_portal=start_portal, reuse_port=True))


def serve_processes(
    settings: Settings, roles: Iterable[str], workers: int, start_portal: PortalStarter | None = None
) -> int:
    """Start `workers` processes sharing the ports; return the worst exit code."""
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_child, args=(settings, list(roles), start_portal), name=f"wicket-{n}")
        for n in range(workers)
    ]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.is_alive():
                child.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.join()
    return max((child.exitcode or 0) for child in children)
