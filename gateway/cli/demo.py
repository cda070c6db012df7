"""The demo's content for `make run`: a brand, help-center articles, a company account, an agent.

`seed_demo_content(db, settings)` is idempotent: it brands the first mailbox (name,
colours, footer links), imports the articles under `fixtures/articles`, and creates the
"Customer Test Ltd" account for the customer.test domain with ticket sharing on, so the
demo's customers see each other's tickets. Tickets themselves come from replayed fixture
mail, as in production. `seed_demo_agent_answers` adds the agent Tom and has him answer
ticket #1001 between the customer's messages (through the same `apply_reply` every door
uses, so his answers are agent messages and are mailed), then spreads the thread over the
last few hours: replayed mail would otherwise be stamped "just now", all at once.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.directory.accounts import add_account
from gateway.directory.agents import add_agent
from gateway.directory.branding import set_brand
from gateway.help.articles import ImportSummary, import_articles
from gateway.models import Agent, AuthorType, Mailbox, Message, Ticket, utcnow
from gateway.settings import Settings
from gateway.storage.database import Database
from gateway.tickets.events import EventBus
from gateway.tickets.replies import AgentReply, apply_reply

ARTICLES = Path(__file__).resolve().parents[2] / "fixtures" / "articles"
DEMO_AGENT = ("tom@example.test", "Tom Agent")
DEMO_TICKET_REF = 1001
# Tom's answers, each after the customer message with the same index
DEMO_ANSWERS = (
    "Hello Alice,\n\nsorry about that. Could you switch the printer off and on again and tell us "
    "what the display shows?\n\nTom",
    "Thanks, Alice. E-203 is a stuck pickup roller: a technician will come by this afternoon.\n\nTom",
)
THREAD_STARTED = timedelta(hours=3)  # the demo ticket was opened this long before the demo starts
DEMO_LINKS = (("Service status", "https://status.example.test/"), ("Privacy", "https://example.test/privacy"))


async def seed_demo_content(db: Database, settings: Settings) -> ImportSummary:
    """Brand the first mailbox, load the demo articles and the demo account; returns the import."""

    def seed(session: Session) -> ImportSummary:
        mailbox = session.scalar(select(Mailbox).order_by(Mailbox.id).limit(1))
        if mailbox is not None and not mailbox.brand_name:
            set_brand(
                session, mailbox.address, name=mailbox.name, primary_color="#3b5bdb", accent_color="#0ca678",
                links=(("Help center", f"{settings.public_url}/help"), *DEMO_LINKS),
            )  # fmt: skip
        summary = import_articles(session, ARTICLES)
        add_account(session, "Customer Test Ltd", domains=["customer.test"], share_tickets=True)
        return summary

    return await db.write(seed)


async def seed_demo_agent_answers(db: Database, events: EventBus) -> None:
    """Tom, an agent of every mailbox, answers ticket #1001 once per customer message he has not answered."""
    await db.write(lambda session: add_agent(session, *DEMO_AGENT))
    await db.write(lambda session: _answer_and_spread(session, events))


def _answer_and_spread(session: Session, events: EventBus) -> None:
    ticket = session.scalar(select(Ticket).where(Ticket.ref == DEMO_TICKET_REF).order_by(Ticket.id).limit(1))
    tom = session.scalar(select(Agent).where(Agent.email == DEMO_AGENT[0]))
    if ticket is None or tom is None or session.scalar(
        select(Message.id).where(Message.ticket_id == ticket.id, Message.author_type == AuthorType.AGENT).limit(1)
    ):
        return  # no demo ticket, or answered on an earlier start
    customer = list(session.scalars(
        select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
    ))  # fmt: skip
    answers = [apply_reply(session, events, ticket, tom, AgentReply(text), thread_rule="cli") for text in DEMO_ANSWERS]
    thread = [m for pair in zip(customer, answers, strict=False) for m in pair] + customer[len(answers):]
    start = utcnow() - THREAD_STARTED
    step = THREAD_STARTED / (len(thread) + 1)
    for position, message in enumerate(thread):
        message.created_at = start + step * position
    ticket.created_at, ticket.last_activity_at = start, thread[-1].created_at
