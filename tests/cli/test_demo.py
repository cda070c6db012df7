"""`make run`'s demo: Tom answers ticket #1001 as an agent, the thread spread over plausible times."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.demo import THREAD_STARTED, seed_demo_agent_answers
from gateway.cli.runtime import Gateway
from gateway.models import AuthorType, Message, Ticket, utcnow
from gateway.storage.database import orm
from tests.mailflow import ALICE, settle, text_of
from tests.support import ReceiveEmail


async def thread_of(gateway: Gateway) -> tuple[Ticket, list[Message]]:
    def _look(session: Session):
        ticket = session.scalar(select(Ticket).where(Ticket.ref == 1001))
        assert ticket is not None
        rows = session.scalars(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.created_at))
        return ticket, list(rows.all())

    return await gateway.db.read(orm(_look))


async def test_the_demo_agent_answers_between_the_customer_messages_at_plausible_times(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    for name in ("new-request.eml", "reply-gmail.eml", "reply-outlook.eml"):
        await receive_email(name)
    await settle(gateway)

    await seed_demo_agent_answers(gateway.db, gateway.events)
    await seed_demo_agent_answers(gateway.db, gateway.events)  # a second start adds nothing

    ticket, thread = await thread_of(gateway)
    authors = [(m.author_type, m.from_name) for m in thread]
    assert authors == [(AuthorType.CUSTOMER, "Alice Doe"), (AuthorType.AGENT, "Tom Agent")] * 2 + [
        (AuthorType.CUSTOMER, "Alice Doe")
    ]
    now = utcnow()
    times = [m.created_at for m in thread]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert now - THREAD_STARTED - timedelta(minutes=1) <= ticket.created_at <= times[0] < times[-1] < now
    answers = (await settle(gateway)).to(ALICE)[1:]
    assert len(answers) == 2 and "Tom Agent" in text_of(answers[0])
