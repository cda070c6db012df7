"""The running gateway: one object wiring the database, routing, store, processor, events, delivery.

`wicket serve`, `wicket replay` and the test suite all build a `Gateway`, so replayed and
test mail takes exactly the production path: `receive` stores the raw bytes through the
group-committing store, and the processor turns stored rows into tickets.

`Gateway.processor` is the process's one `Processor` (with the one router and event bus).
The portal does not build one: `wicket serve` hands this one to `portal.app.create_app`,
which processes the portal's replies and requests through it at once, whether or not this
node also runs the background `worker` role (docs/architecture.md, "The portal").

In a node of several processes the store also rings the node's doorbell after each commit,
and a process running the processor listens to it (gateway/cli/doorbell.py), so mail
stored by a listener in another process is processed at once rather than at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from gateway.cli.doorbell import Doorbell
from gateway.inbound.dns import DnsResolver, Resolver
from gateway.inbound.processor import Processor
from gateway.inbound.sender_checks import SenderChecks
from gateway.inbound.routing import Router
from gateway.inbound.smtp import WicketHandler, start_smtp_server
from gateway.inbound.store import InboundStore, IncomingMail
from gateway.outbound.notify import ticket_events
from gateway.outbound.outbox import OutboxWorker
from gateway.outbound.periodic import PeriodicJobs
from gateway.outbound.senders import Sender, build_sender
from gateway.outbound.webhooks.worker import WebhookWorker
from gateway.settings import Settings
from gateway.storage.database import Database, open_database


class Gateway:
    """A node's parts over one database; `start` readies them, the `run_*`/`serve_*` methods start roles."""

    def __init__(
        self,
        settings: Settings,
        db: Database | None = None,
        *,
        doorbell: Doorbell | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.settings = settings
        self.doorbell = doorbell
        self.db = db or open_database(settings)
        self.webhooks = WebhookWorker(self.db, settings)
        self.events = ticket_events(settings, self.webhooks.wake)
        self.router = Router(self.db, settings.keys)
        # The node's one DNS resolver: every sender check looks up through it (tests pass a fixed one).
        self.resolver = resolver or DnsResolver(settings.dns_nameservers, settings.dns_timeout_seconds)
        checks = SenderChecks(self.resolver, settings.dns_timeout_seconds) if settings.sender_checks else None
        self.processor = Processor(self.db, settings, self.router, self.events, checks)
        self.store = InboundStore(self.db, on_stored=self._stored)
        # Outbound mail: the sender and its delivery worker.
        self.sender: Sender = build_sender(settings)
        self.outbox = OutboxWorker(self.db, settings, self.sender)
        self.periodic = PeriodicJobs(self.db, settings, self.events)
        self._tasks: list[asyncio.Task[None]] = []
        self._servers: list[asyncio.Server] = []
        self._stop_listening: Callable[[], None] | None = None

    async def start(self) -> None:
        await self.router.reload()
        await self.store.start()

    def _stored(self) -> None:
        self.processor.wake()
        if self.doorbell is not None:
            self.doorbell.ring()

    async def stop(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
        for server in self._servers:
            server.close()
            await server.wait_closed()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._servers.clear()
        self._tasks.clear()
        await self.sender.close()  # after the outbox task: nothing sends meanwhile
        await self.processor.release()  # after the processing task: nothing claims meanwhile
        await asyncio.to_thread(self.processor.close)
        await self.store.stop()
        await self.webhooks.close()

    async def serve_smtp(
        self, host: str | None = None, port: int | None = None, *, reuse_port: bool = False
    ) -> asyncio.Server:
        handler = WicketHandler(self.db, self.router, self.store, self.settings)
        server = await start_smtp_server(self.settings, handler, host=host, port=port, reuse_port=reuse_port)
        self._servers.append(server)
        return server

    def run_processor(self) -> None:
        self._tasks.append(asyncio.create_task(self.processor.run(), name="processor"))
        if self.doorbell is not None:
            self._stop_listening = self.doorbell.listen(self.processor.wake)

    def run_outbox(self) -> None:
        """Outbound delivery, and the periodic job whose work ends in the outbox (auto-resolve, digests)."""
        self._tasks.append(asyncio.create_task(self.outbox.run(), name="outbox"))
        self._tasks.append(asyncio.create_task(self.periodic.run(), name="periodic"))

    def run_webhooks(self) -> None:
        self._tasks.append(asyncio.create_task(self.webhooks.run(), name="webhooks"))

    async def receive(
        self,
        raw: bytes,
        *,
        mail_from: str,
        rcpt_tos: tuple[str, ...],
        peer: str = "local",
        source: str = "replay",
        send_mail: bool = True,
        helo: str | None = None,
    ) -> int:
        """Store a message exactly as the SMTP listener would; returns the InboundEmail id.

        With `send_mail=False` it is processed the same way but nobody is mailed about it.
        """
        return await self.store.save(IncomingMail(raw, mail_from, rcpt_tos, peer, source, send_mail, helo))
