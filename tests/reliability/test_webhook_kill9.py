"""kill -9 of the node posting webhooks, mid-delivery: no event is lost, and the only ones
posted twice are those whose request was under way when the node died (the documented
window: posted, not yet recorded), each again with the same `webhook-id`.

Twenty messages go over SMTP to a `wicket serve --role smtp --role worker` node whose
route posts every message to a real receiver, which also gets `ticket.created`. The
receiver holds its fifth request open; the node is killed with SIGKILL while it waits,
and a second node on the same database takes over once the leases run out.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from gateway.inbound.route_admin import RouteSpec, add_route
from gateway.models import RouteMatch, WebhookEvent, WebhookStatus
from gateway.outbound.webhooks.endpoints import add_endpoint
from gateway.settings import Settings
from gateway.storage.database import open_database, orm
from tests.outbound.webhook_receiver import Receiver, running
from tests.reliability.nodes import SECRET, Node, free_port, node_environment, prepare_database
from tests.support import SUPPORT, send, simple_mail

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

MESSAGES, HOLD_AT = 20, 5
QUICK = {"webhook_lease_seconds": "2", "webhook_poll_seconds": "0.2", "webhook_retry_base_seconds": "0.2",
         "process_lease_seconds": "2", "process_poll_seconds": "0.2"}  # fmt: skip


@dataclass
class HoldingReceiver(Receiver):
    """Answers 200, except that request number HOLD_AT is held open (until the node dies)."""

    holding: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        answer = await super().handle(request)
        if len(self.requests) == HOLD_AT:
            self.holding.set()
            await self.release.wait()  # the node is dead by then: nobody reads this answer
        return answer


async def test_a_killed_webhook_worker_loses_nothing_and_repeats_only_what_was_in_flight(
    shared_url: str, tmp_path: Path
) -> None:
    await prepare_database(shared_url, acknowledge=False)
    settings = Settings(database_url=shared_url, secret_keys=[SECRET])
    receiver = HoldingReceiver()
    async with running(receiver):
        db = open_database(settings)
        try:
            secret = await db.write(lambda session: _webhook_route(session, settings, receiver.url))
            smtp_port = free_port()
            env = node_environment(shared_url, tmp_path / "var", smtp_port=str(smtp_port), **QUICK)
            first = Node.start(env, tmp_path / "first.log", "--role", "smtp", "--role", "worker")
            await first.wait_listening(smtp_port)
            for n in range(MESSAGES):
                code, _ = await send(("127.0.0.1", smtp_port), simple_mail(f"Message {n}"))
                assert code == 250
            await asyncio.wait_for(receiver.holding.wait(), 30)
            first.kill()
            # Requests the node sent before it died may still wait unread in the receiver's
            # sockets (this event loop was blocked while the node was reaped): read them now,
            # so the mark comes after everything the first node posted.
            await asyncio.sleep(0.5)
            killed_at = time.monotonic()
            receiver.release.set()
            second = Node.start(env, tmp_path / "second.log", "--role", "worker")
            try:
                events = await _all_settled(db, MESSAGES * 2)
            finally:
                second.stop()
        finally:
            await db.dispose()
    assert {e.status for e in events} == {WebhookStatus.DELIVERED}
    arrivals = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert set(arrivals) == {e.public_id for e in events}, "an event never reached the receiver"
    repeated = {webhook_id for webhook_id, count in arrivals.items() if count > 1}
    first_seen = {}
    for request in receiver.requests:
        first_seen.setdefault(request.headers["webhook-id"], request.at)
        Webhook(secret).verify(request.body, request.headers)
    assert all(first_seen[webhook_id] < killed_at for webhook_id in repeated), "posted twice outside the window"
    assert len(repeated) <= settings.webhook_batch_size
    kinds = Counter(json.loads(r.body)["type"] for r in receiver.requests)
    assert kinds["message.received"] >= MESSAGES and kinds["ticket.created"] >= MESSAGES


def _webhook_route(session, settings: Settings, url: str) -> str:  # type: ignore[no-untyped-def]
    endpoint, secret = add_endpoint(session, settings, url, events=["ticket.created"])
    add_route(session, RouteSpec(RouteMatch.EXACT, SUPPORT, webhook=endpoint.public_id))
    return secret


async def _all_settled(db, expected: int, seconds: float = 60) -> list[WebhookEvent]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        def _look(session: Session):
            events = list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))
            return events

        events = await db.read(orm(_look))
        if len(events) == expected and all(e.status == WebhookStatus.DELIVERED for e in events):
            return events
        assert time.monotonic() < deadline, Counter(e.status for e in events)
        await asyncio.sleep(0.2)
