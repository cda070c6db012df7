"""Delivering webhook events: claimed from the leased queue, signed, posted, settled.

The `webhook_event` rows are a leased queue (gateway/storage/queue.py; docs/architecture.md,
"Webhooks"). A worker claims due rows with a lease, signs each body per the Standard
Webhooks specification with the `standardwebhooks` package (`webhook-id`,
`webhook-timestamp`, `webhook-signature`, one signature per valid secret) and posts it.
A 2xx marks the row delivered; a 410 Gone dead-letters it and turns the endpoint off
(nothing more is written for it until an operator redelivers or rotates its secret); any
other answer, a timeout or a refused connection schedules a retry with doubling backoff,
capped, for more than a day (`webhook_max_attempts`), then the dead letter, which keeps
the last error and HTTP status. Rows of one endpoint and one ticket go out one at a time
in the order they were written: a row waits (without spending an attempt) while an
earlier one of its ticket is undelivered. Delivery is at-least-once: a worker killed
between the receiver's answer and the commit that records it leaves the row leased, and
it is posted again, with the same `webhook-id`, once the lease (`webhook_lease_seconds`)
runs out; receivers deduplicate by that id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from gateway.models import WebhookEndpoint, WebhookEvent, WebhookStatus, utcnow
from gateway.outbound.webhooks.endpoints import signing_secrets
from gateway.settings import Settings
from gateway.storage.database import Database
from gateway.storage.queue import LeasedQueue, Policy, QueueTable, Statuses

log = logging.getLogger(__name__)

LOST = "gave up: the worker was lost while posting, too many times"
GONE = "the endpoint answered 410 Gone: it is turned off"
MIN_WAIT_SECONDS = 0.2  # a row behind an undelivered one of its ticket looks again no sooner

WEBHOOK_QUEUE = QueueTable(
    WebhookEvent.__table__,
    Statuses(
        ready=WebhookStatus.PENDING, leased=WebhookStatus.SENDING,
        retrying=WebhookStatus.RETRYING, dead=WebhookStatus.DEAD,
    ),
    name="webhooks",
    prepared=False,  # each row waits for a receiver's answer, which costs more than compiling
    returning=("endpoint_id", "ordering_key", "content_type", "payload", "attempts", "public_id"),
    settle_values=("delivered_at", "response_status"),
    lost_error=LOST,
)  # fmt: skip
_WAITING = (WebhookStatus.PENDING, WebhookStatus.SENDING, WebhookStatus.RETRYING)
_EVENTS = WebhookEvent.__table__.c
_EARLIER = (
    select(_EVENTS.next_attempt_at, _EVENTS.lease_expires_at)
    .where(
        _EVENTS.endpoint_id == bindparam("endpoint_id"),
        _EVENTS.ordering_key == bindparam("key"),
        _EVENTS.id < bindparam("row_id"),
        _EVENTS.status.in_(_WAITING),
    )
    .order_by(_EVENTS.id)
    .limit(1)
)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    endpoint_id: int
    ordering_key: str | None
    content_type: str
    payload: bytes
    attempts: int
    public_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None  # None: no HTTP answer at all
    error: str


class WebhookWorker:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._queue = LeasedQueue(WEBHOOK_QUEUE, Policy(
            batch=settings.webhook_batch_size, lease_seconds=settings.webhook_lease_seconds,
            max_attempts=settings.webhook_max_attempts, retry_base_seconds=settings.webhook_retry_base_seconds,
            retry_max_seconds=settings.webhook_retry_max_seconds,
        ))  # fmt: skip
        self._client: aiohttp.ClientSession | None = None
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def policy(self) -> Policy:
        return self._queue.policy

    def wake(self) -> None:
        """New events were committed (from any thread): look now rather than at the next poll."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wakeup.set)

    async def run(self) -> None:
        """Deliver forever; back off while the database is unreachable."""
        self._loop = asyncio.get_running_loop()
        backoff = self._settings.webhook_poll_seconds
        while True:
            self._wakeup.clear()
            try:
                delivered = await self.deliver_batch()
                backoff = self._settings.webhook_poll_seconds
            except (OperationalError, InterfaceError, OSError) as error:
                log.warning("webhooks cannot reach the database (%s); retrying in %.0fs", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            if not delivered:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._settings.webhook_poll_seconds)

    async def drain(self) -> int:
        """Deliver until nothing is due; return how many attempts were made."""
        total = 0
        while attempted := await self.deliver_batch():
            total += attempted
        return total

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def deliver_batch(self) -> int:
        rows = await self._db.write(lambda session: self._claim(session))
        if not rows:
            return 0
        endpoints = await self._db.read(lambda connection: _endpoints(connection, {r.endpoint_id for r in rows}))
        lines: dict[tuple[int, str], list[Claimed]] = defaultdict(list)
        for row in rows:
            lines[(row.endpoint_id, row.ordering_key or f"event:{row.id}")].append(row)
        await asyncio.gather(*(self._deliver_line(line, endpoints.get(line[0].endpoint_id)) for line in lines.values()))
        return len(rows)

    def _claim(self, session: Session) -> list[Claimed]:
        claim = self._queue.claim(session.connection())
        for lost in claim.lost:
            log.warning("webhook event %s dead-lettered: %s", lost[6], LOST)
        return [Claimed(*row) for row in claim.rows]

    async def _deliver_line(self, rows: list[Claimed], endpoint: WebhookEndpoint | None) -> None:
        """One endpoint's rows of one ticket, oldest first; the rest wait once one is not delivered."""
        for position, row in enumerate(rows):
            wait = await self._db.read(lambda connection, row=row: _wait_for_earlier(connection, row))
            if wait is not None:
                waiting = rows[position:]
                await self._db.write(lambda session, waiting=waiting, wait=wait: self._defer(session, waiting, wait))
                return
            if not await self._deliver(row, endpoint):
                rest = rows[position + 1:]
                if rest:
                    await self._db.write(lambda session, rest=rest: self._defer(session, rest, MIN_WAIT_SECONDS))
                return

    def _defer(self, session: Session, rows: list[Claimed], seconds: float) -> None:
        for row in rows:
            self._queue.defer(session.connection(), row.id, row.attempts, seconds)

    async def _deliver(self, row: Claimed, endpoint: WebhookEndpoint | None) -> bool:
        if endpoint is None or not endpoint.active:
            await self._settle(row, Answer(410, GONE), delivered=False)
            return False
        answer = await self._post(row, endpoint)
        delivered = answer.status is not None and 200 <= answer.status < 300
        settling = asyncio.ensure_future(self._settle(row, answer, delivered=delivered))
        try:
            await asyncio.shield(settling)
        except asyncio.CancelledError:
            await settling  # the receiver has answered: record that before the worker stops
            raise
        return delivered

    async def _post(self, row: Claimed, endpoint: WebhookEndpoint) -> Answer:
        now = utcnow()
        signatures = [Webhook(secret).sign(row.public_id, now, row.payload) for secret in
                      signing_secrets(self._settings, endpoint, now)]  # fmt: skip
        headers = {
            "webhook-id": row.public_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(signatures),
            "Content-Type": row.content_type,
            "User-Agent": "Wicket-Webhooks/1",
        }
        timeout = aiohttp.ClientTimeout(total=self._settings.webhook_timeout_seconds)
        try:
            async with self._session().post(
                endpoint.url, data=row.payload, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                text = (await response.content.read(1000)).decode("utf-8", "replace")
                return Answer(response.status, f"HTTP {response.status}: {text}".strip())
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return Answer(None, f"{type(error).__name__}: {error}".strip(": "))

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = aiohttp.ClientSession()
        return self._client

    async def _settle(self, row: Claimed, answer: Answer, *, delivered: bool) -> None:
        def settle(session: Session) -> None:
            connection = session.connection()
            if delivered:
                self._queue.finish(connection, row.id, row.attempts, WebhookStatus.DELIVERED,
                                   delivered_at=utcnow(), response_status=answer.status)  # fmt: skip
                return
            gone = answer.status == 410
            log.warning("webhook event %s, attempt %d: %s", row.public_id, row.attempts, answer.error[:200])
            if self._queue.fail(connection, row.id, row.attempts, answer.error[:4000], permanent=gone) is not None:
                connection.execute(update(WebhookEvent).where(WebhookEvent.id == row.id)
                                   .values(response_status=answer.status))  # fmt: skip
            if gone:
                connection.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == row.endpoint_id)
                                   .values(active=False))  # fmt: skip

        await self._db.write(settle)


def _endpoints(connection: Connection, ids: set[int]) -> dict[int, WebhookEndpoint]:
    e = WebhookEndpoint
    rows = connection.execute(
        select(e.id, e.public_id, e.url, e.active, e.key_id, e.secret_version, e.previous_valid_until).where(e.id.in_(ids))
    )
    return {row.id: WebhookEndpoint(**row._mapping) for row in rows}


def _wait_for_earlier(connection: Connection, row: Claimed) -> float | None:
    """Seconds to wait when an earlier event of the same ticket and endpoint is undelivered."""
    if row.ordering_key is None:
        return None
    params: dict[str, Any] = {"endpoint_id": row.endpoint_id, "key": row.ordering_key, "row_id": row.id}
    earlier = connection.execute(_EARLIER, params).first()
    if earlier is None:
        return None
    if earlier.lease_expires_at is not None:
        return MIN_WAIT_SECONDS  # being posted right now: its answer comes within the timeout
    due: datetime | None = earlier.next_attempt_at
    if due is None:
        return MIN_WAIT_SECONDS
    return max(MIN_WAIT_SECONDS, (due - utcnow()).total_seconds())


def retry_window(policy: Policy) -> timedelta:
    """How long a row is retried before the dead letter: the sum of its backoffs."""
    return timedelta(seconds=sum(policy.backoff(attempt) for attempt in range(1, policy.max_attempts)))

