"""The status the portal shows is the ticket's state, whoever changed it last."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.models import Agent, Ticket, TicketStatus
from gateway.outbound.notify import ticket_events
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from gateway.tickets.commands import Commands
from gateway.tickets.replies import AgentReply, apply_reply
from tests.portal.helpers import Client, add_contact, post_form
from tests.portal.story import reload, signed_in, tom
from tests.support import ReceiveEmail

ALICE = "alice@customer.test"


async def tom_answers(db: Database, settings: Settings, ticket: Ticket, agent: Agent, text: str, **commands: object) -> None:
    def _change(session: Session):
        current = session.get_one(Ticket, ticket.id)
        reply = AgentReply(text, Commands(**commands))  # type: ignore[arg-type]
        apply_reply(session, ticket_events(settings), current, agent, reply, thread_rule="api")

    await db.write(_change)


async def test_a_customers_reply_to_a_pending_ticket_never_shows_waiting_for_your_reply(
    client: Client, db: Database, settings: Settings, receive_email: ReceiveEmail
) -> None:
    inbound = await receive_email("new-request.eml")

    def _look(session: Session):
        ticket = session.get_one(Ticket, inbound.ticket_id)
        return ticket

    ticket = await db.read(orm(_look))
    await tom_answers(db, settings, ticket, await tom(db), "Which tray is it?", status=TicketStatus.PENDING)
    await signed_in(client, db, settings, await add_contact(db, ALICE))
    page = f"/tickets/{ticket.public_id}"
    assert "Waiting for your reply" in await (await client.get(page)).text()

    replied = await post_form(client, f"{page}/reply", {"message": "The upper tray."}, page=page)
    assert replied.status == 303
    body = await (await client.get(page)).text()
    assert (await reload(db, ticket)).status == TicketStatus.OPEN
    assert "Waiting for your reply" not in body and 'class="status status-open">Open<' in body
