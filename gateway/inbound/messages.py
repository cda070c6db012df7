"""A customer's message as rows: the Message a parsed mail makes, and its Core inserts.

`customer_message` builds the Message model object from a parsed mail and what the
delivery steps decided (sender, ticket, threading rule); `insert_message` writes it and
its attachments with Core on the processing transaction's connection, since the ORM's
unit of work cost more than everything else in the step (gateway/inbound/delivery.py,
step 6). The message row goes through a prepared statement (gateway/storage/statements.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert

from gateway.mail.classify import Classification
from gateway.mail.parse import ParsedEmail
from gateway.models import Attachment, AuthorType, Message, Ticket, utcnow
from gateway.storage import statements

_MESSAGES = Message.__table__
_INSERT_MESSAGE = statements.prepare(
    "delivery.insert_message", insert(_MESSAGES).returning(_MESSAGES.c.id, _MESSAGES.c.public_id)
)
_MESSAGE_COLUMNS = tuple(c.key for c in _MESSAGES.columns if c.key not in ("id", "public_id"))
_INSERT_ATTACHMENTS = insert(Attachment.__table__)


def customer_message(
    mail: ParsedEmail,
    *,
    inbound_id: int,
    mailbox_id: int,
    ticket: Ticket,
    dedupe_key: str,
    contact_id: int | None,
    email: str,
    name: str,
    verdict: Classification,
    rule: str,
    with_ticket: bool,
    sender_verdicts: dict[str, Any] | None = None,
) -> Message:
    """The customer's message as a model object, not added to the session (`insert_message` writes it).

    `with_ticket`: the ticket is new with this message, which then shares its moment.
    """
    return Message(
        ticket_id=ticket.id,
        mailbox_id=mailbox_id,
        dedupe_key=dedupe_key,
        inbound_email_id=inbound_id,
        direction="in",
        author_type=AuthorType.CUSTOMER,
        author_contact_id=contact_id,
        author_agent_id=None,
        internal=False,
        classification=str(verdict.kind),
        thread_rule=str(rule),
        rfc_message_id=mail.message_id,
        in_reply_to=list(mail.in_reply_to),
        references=list(mail.references),
        subject=mail.subject,
        from_email=email,
        from_name=name,
        to=[a.email for a in mail.to],
        cc=[a.email for a in mail.cc],
        body_text=mail.text,
        body_html=mail.html,
        display=mail.display,
        reply_text=mail.reply_text,
        quoted_text=mail.quoted_text,
        defects=list(mail.defects),
        sender_verdicts=sender_verdicts,
        sent_at=mail.date,
        # One moment for a new ticket and its first message: no second ticket UPDATE.
        created_at=ticket.created_at if with_ticket else utcnow(),
    )


def insert_message(connection: Connection, message: Message, mail: ParsedEmail) -> None:
    """Insert `message` and the mail's attachments; `message` gets its id and public id."""
    values = {key: getattr(message, key) for key in _MESSAGE_COLUMNS}
    [(message.id, message.public_id)] = statements.rows(_INSERT_MESSAGE, connection, values)
    if mail.attachments:
        connection.execute(_INSERT_ATTACHMENTS, _attachment_rows(message.id, mail))


def _attachment_rows(message_id: int, mail: ParsedEmail) -> list[dict[str, object]]:
    return [
        {
            "message_id": message_id,
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.size,
            "sha256": a.sha256,
            "content_id": a.content_id,
            "inline": a.inline,
            "data": a.data,
        }
        for a in mail.attachments
    ]
