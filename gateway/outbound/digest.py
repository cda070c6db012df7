"""The daily digest: each agent who asked for it gets one email per mailbox and day.

After the mailbox's `digest_hour` (UTC) an agent with `daily_digest` on their membership
is due, unless an `AgentDigest` row for that agent, mailbox and day exists. `queue_due_digests`
inserts that row (insert-if-absent on its unique key) and queues the email in the same
transaction, so a digest goes out exactly once a day whatever restarts, however many
nodes run the periodic job, and a node that was down at the hour sends it when it is back.

The digest lists, among the tickets the agent follows (their notification policy, see
gateway/outbound/team_mail.py): open and pending tickets, oldest first, with their age;
unassigned ones; and open tickets whose last public message is the customer's and older
than `digest_waiting_hours`, the ones waiting on the team.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.models import (
    Agent,
    AgentDigest,
    AuthorType,
    Contact,
    Mailbox,
    MailboxMembership,
    Message,
    Ticket,
    TicketStatus,
    utcnow,
)
from gateway.outbound.compose import OutboundKind, mail_address, new_message_id, render_parts
from gateway.outbound.mime import new_email, text_and_html
from gateway.outbound.outbox import queue_email
from gateway.outbound.team_mail import follows
from gateway.settings import Settings
from gateway.storage.upsert import insert_ignore
from gateway.tickets.markers import subject_tag

MAX_LISTED = 50  # tickets per section; the counts above them are complete
UNCLEAR = "sender unclear"  # the requester of a ticket whose mail named no usable sender


@dataclass(frozen=True, slots=True)
class DigestRow:
    tag: str
    subject: str
    requester: str
    status: str
    age: str
    owner: str


def _age(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24} days" if hours >= 48 else f"{hours} hours"


def _last_public_authors(session: Session, ticket_ids: list[int]) -> dict[int, tuple[str, datetime]]:
    """Per ticket, who wrote the last message the customer can see, and when."""
    last: dict[int, tuple[str, datetime]] = {}
    for start in range(0, len(ticket_ids), 500):
        rows = session.execute(
            select(Message.ticket_id, Message.author_type, Message.created_at)
            .where(Message.ticket_id.in_(ticket_ids[start : start + 500]), Message.internal.is_(False))
            .order_by(Message.id)
        )
        for ticket_id, author_type, created_at in rows:
            last[ticket_id] = (author_type, created_at)
    return last


def digest_context(
    session: Session, settings: Settings, mailbox: Mailbox, agent: Agent, policy: str, now: datetime
) -> dict[str, object]:
    """What one agent's digest of one mailbox says."""
    tickets = session.execute(
        select(Ticket, func.coalesce(Contact.email, UNCLEAR))
        .outerjoin(Contact, Contact.id == Ticket.requester_id)  # none while the sender is unclear
        .where(Ticket.mailbox_id == mailbox.id, Ticket.status.in_([TicketStatus.OPEN, TicketStatus.PENDING]))
        .order_by(Ticket.created_at, Ticket.id)
    ).all()
    followed = [(t, email) for t, email in tickets if follows(policy, agent.id, t.owner_agent_id)]
    owners = {a.id: a.name or a.email for a in session.scalars(select(Agent).where(Agent.active.is_(True)))}
    last = _last_public_authors(session, [t.id for t, _ in followed])
    cutoff = now - timedelta(hours=settings.digest_waiting_hours)

    def row(ticket: Ticket, requester: str, since: datetime) -> DigestRow:
        owner = owners.get(ticket.owner_agent_id, "") if ticket.owner_agent_id else ""
        return DigestRow(subject_tag(ticket), ticket.subject, requester, ticket.status, _age(now - since), owner)

    waiting = [
        row(t, email, last[t.id][1])
        for t, email in followed
        if t.status == TicketStatus.OPEN and t.id in last
        and last[t.id][0] == AuthorType.CUSTOMER and last[t.id][1] < cutoff
    ]
    unassigned = [row(t, email, t.created_at) for t, email in tickets if t.owner_agent_id is None]
    return {
        "agent_name": agent.name or agent.email,
        "agent_email": agent.email,
        "brand": mailbox.display_name,
        "mailbox": mailbox.address,
        "open_count": len(followed),
        "open_tickets": [row(t, email, t.created_at) for t, email in followed][:MAX_LISTED],
        "unassigned": unassigned[:MAX_LISTED],
        "waiting": waiting[:MAX_LISTED],
        "waiting_hours": f"{settings.digest_waiting_hours:g}",
    }


def compose_digest(settings: Settings, mailbox: Mailbox, agent: Agent, context: dict[str, object]) -> EmailMessage:
    subject = f"{mailbox.display_name} daily digest: {context['open_count']} open"
    text, html = render_parts("digest", {**context, "subject": subject})
    email = new_email()
    email["From"] = mail_address(mailbox.display_name, mailbox.address)
    email["To"] = mail_address(agent.name, agent.email)
    email["Subject"] = subject
    email["Date"] = format_datetime(utcnow())
    email["Message-ID"] = f"<{new_message_id(mailbox)}>"
    email["Auto-Submitted"] = "auto-generated"
    email["X-Auto-Response-Suppress"] = "All"
    email["X-Wicket-Loop"] = settings.loop_token
    text_and_html(email, text, html)
    return email


def queue_due_digests(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Queue every digest due at `now` that was not queued today; returns how many."""
    now = now or utcnow()
    due = session.execute(
        select(Agent, Mailbox, MailboxMembership.notify_policy)
        .join(MailboxMembership, MailboxMembership.agent_id == Agent.id)
        .join(Mailbox, Mailbox.id == MailboxMembership.mailbox_id)
        .where(MailboxMembership.daily_digest.is_(True), Agent.active.is_(True), Mailbox.digest_hour <= now.hour)
        .order_by(Mailbox.id, Agent.id)
    ).all()
    queued = 0
    dialect = session.get_bind().dialect.name
    for agent, mailbox, policy in due:
        values = {"agent_id": agent.id, "mailbox_id": mailbox.id, "day": now.date(), "created_at": now}
        claimed = session.execute(insert_ignore(dialect, AgentDigest, values, ["agent_id", "mailbox_id", "day"]))
        if not claimed.rowcount:
            continue
        email = compose_digest(settings, mailbox, agent, digest_context(session, settings, mailbox, agent, policy, now))
        queue_email(session, mailbox=mailbox, to=[agent.email], email=email, kind=OutboundKind.DIGEST)
        queued += 1
    return queued
