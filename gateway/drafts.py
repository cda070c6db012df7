"""Ticket mail queued as a draft in the transaction that caused it, rendered at delivery.

The processor and the agent-reply path decide *that* someone is mailed, inside the ticket
change's transaction: `queue_draft` stores an outbox row naming the recipient, the
template and its context, the Reply-To, and a Message-ID fixed up front, so a reply to the
email threads through the row before and after it is sent. The outbox worker calls
`render_draft` when it picks the row up: the thread headers as they were when the row was
queued and, for a customer, a fresh single-use link issued in the transaction that also
stores the finished bytes, so the link's lifetime starts when the email leaves, and a
retry sends the very same bytes. Composing MIME is the costly part of ticket mail; doing
it here keeps the processing transaction, and SQLite's write lock, short.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from email.policy import SMTP

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from gateway.branding import portal_url
from gateway.compose import LinkBlock, compose, conversation_thread, mail_address, new_message_id
from gateway.models import Contact, Mailbox, Message, OutboxMessage, Ticket, utcnow
from gateway.prepared import Prepared
from gateway.settings import Settings
from gateway.tokens import LinkPurpose, format_code, issue_link

_QUEUE = Prepared(insert(OutboxMessage.__table__))  # no unit of work for a row nobody reads back here


@dataclass(frozen=True, slots=True)
class Draft:
    """What one email will say and to whom; JSON on the outbox row until it is rendered."""

    template: str
    context: dict[str, str]
    to_name: str
    to_email: str
    reply_to: str
    automatic: bool
    for_customer: bool  # a customer's thread leaves out the notifications agents got
    from_name: str | None = None
    link_contact_id: int | None = None  # mail a fresh magic link for this contact


_DRAFT_FIELDS = tuple(field.name for field in fields(Draft))


def queue_draft(
    session: Session,
    *,
    mailbox: Mailbox,
    ticket: Ticket,
    kind: str,
    draft: Draft,
    envelope_from: str,
    message: Message | None = None,
) -> None:
    """Queue `draft` for delivery; the recipient's address must pass `mail_address`."""
    _QUEUE.rows(
        session.connection(),
        {
            "kind": kind,
            "mailbox_id": mailbox.id,
            "ticket_id": ticket.id,
            "message_id": message.id if message else None,
            "mail_from": envelope_from,
            "rcpt_tos": [draft.to_email],
            "rfc_message_id": new_message_id(mailbox),
            "draft": {name: getattr(draft, name) for name in _DRAFT_FIELDS},  # asdict deep-copies
            "next_attempt_at": utcnow(),
        },
    )


async def render_draft(session: AsyncSession, settings: Settings, row: OutboxMessage) -> bytes:
    """The finished email for a queued draft, issuing its magic link in `session`."""
    assert row.draft is not None and row.ticket_id is not None, "only drafts are rendered"
    draft = Draft(**row.draft)
    mailbox = await session.get_one(Mailbox, row.mailbox_id)
    ticket = await session.get_one(Ticket, row.ticket_id)
    link = None
    if draft.link_contact_id is not None:
        contact = await session.get_one(Contact, draft.link_contact_id)
        issued = await issue_link(session, settings, contact, ticket=ticket, purpose=LinkPurpose.REPLY)
        link = LinkBlock(issued.url(portal_url(settings, mailbox)), format_code(issued.code))
    email = compose(
        settings,
        mailbox,
        ticket,
        to=mail_address(draft.to_name, draft.to_email),
        template=draft.template,
        context=draft.context,
        reply_to=draft.reply_to,
        thread=await conversation_thread(session, ticket, for_customer=draft.for_customer, before=row),
        automatic=draft.automatic,
        message_id=row.rfc_message_id,
        from_name=draft.from_name,
        link=link,
    )
    return email.as_bytes(policy=SMTP)
