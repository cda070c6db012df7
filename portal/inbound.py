"""How the portal hands a contact's reply or new request to the gateway's processor.

The portal does not build a `Processor`: the node's composition root
(`gateway.cli.runtime.Gateway`) builds the one Processor of the process, with the router
and the event bus every door shares, and hands it to `portal.app.create_app`, which keeps
it under `keys.PROCESSOR` (docs/architecture.md, "The portal"). The portal processes what
it stores itself, at once, so a reply is on the page and a new request has its ticket when
the browser is redirected, even on a node that runs the portal role alone. `process_now`
runs one row the view stored (claimed, see `portal.submissions`) and returns its outcome
(status and ticket; not the row, whose raw mail may be megabytes); a failure leaves the
row to the background processor's retries, like any failed mail.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import Row, select

from gateway.models import InboundEmail, InboundStatus
from portal import keys


async def process_now(request: web.Request, inbound_id: int) -> Row[tuple[InboundStatus, int | None]]:
    """Process the claimed row `inbound_id`; its status and ticket as it ended up."""
    await request.app[keys.PROCESSOR].process(inbound_id)
    outcome = select(InboundEmail.status, InboundEmail.ticket_id).where(InboundEmail.id == inbound_id)
    return await request.app[keys.DB].read(lambda connection: connection.execute(outcome).one())
