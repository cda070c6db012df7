"""How the portal hands a contact's reply or new request to the gateway.

The portal does not own a Gateway, but it processes what it stores itself, at once, so a
reply is on the page and a new request has its ticket when the browser is redirected.
`processor_context` gives the application its own `Processor` (own router, and the event
bus with every production subscriber from `gateway.outbound.notify.ticket_events`, so agents are
notified as for email). `process_now` runs one row the view stored (claimed, see
`portal.submissions`) and returns it with its outcome; a failure leaves the row to
the background processor's retries, like any failed mail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.inbound.processor import Processor
from gateway.inbound.routing import Router
from gateway.models import InboundEmail
from gateway.outbound.notify import ticket_events
from portal import keys


async def processor_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: `app[keys.PROCESSOR]`, built once the database is open."""
    settings, db = app[keys.SETTINGS], app[keys.DB]
    app[keys.PROCESSOR] = Processor(db, settings, Router(db, settings.keys), ticket_events(settings))
    yield


async def process_now(request: web.Request, inbound_id: int) -> InboundEmail:
    """Process the claimed row `inbound_id` and return it as it ended up."""
    await request.app[keys.PROCESSOR].process(inbound_id)
    async with request.app[keys.DB].sessions() as session:
        return await session.get_one(InboundEmail, inbound_id)
