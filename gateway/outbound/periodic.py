"""The team's periodic job: pending tickets resolved after their time, and daily digests.

`PeriodicJobs.run` wakes every `periodic_poll_seconds` and does, each in its own write
transaction, what is due: `auto_resolve_pending` (gateway/tickets/status.py; off unless
`pending_auto_resolve_days` is set; its `TicketChanged` events make the customer's mail)
and `queue_due_digests` (gateway/outbound/digest.py). Both are safe to run on every node at
once and after any restart: a resolved ticket is no longer pending, and a digest is
claimed by its unique row before it is queued. It runs with the `outbox` role.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from gateway.outbound.digest import queue_due_digests
from gateway.settings import Settings
from gateway.storage.database import Database
from gateway.tickets.events import EventBus
from gateway.tickets.status import auto_resolve_pending

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobRun:
    resolved: int
    digests: int


class PeriodicJobs:
    def __init__(self, db: Database, settings: Settings, events: EventBus) -> None:
        self._db = db
        self._settings = settings
        self._events = events

    async def run_once(self, now: datetime | None = None) -> JobRun:
        days = self._settings.pending_auto_resolve_days
        resolved = await self._db.write(lambda session: auto_resolve_pending(session, self._events, days, now))
        digests = await self._db.write(lambda session: queue_due_digests(session, self._settings, now))
        if resolved or digests:
            log.info("periodic job: %d pending ticket(s) resolved, %d digest(s) queued", resolved, digests)
        return JobRun(resolved, digests)

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # one bad run must not end the job; the next run tries again
                log.exception("periodic job failed; trying again in %.0f s", self._settings.periodic_poll_seconds)
            await asyncio.sleep(self._settings.periodic_poll_seconds)
