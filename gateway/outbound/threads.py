"""The thread an outbound email continues: its In-Reply-To and References.

A ticket's thread is the Message-IDs of the customers' mail and of what Wicket sent for
it, oldest first; a customer's thread leaves out the notifications that went to agents.
References keeps the first id and the newest ones, `MAX_REFERENCES` in all, as mail
clients need the root and the recent ancestors (RFC 5322 section 3.6.4). Reading the
thread costs the same for a ticket of five emails and one of fifty thousand: each part
(mail received, mail sent) is read from both ends of the ticket through an index, a few
rows from the oldest end and a window from the newest, never the rows between
(docs/architecture.md, "One email, from the socket to the page", step 5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from operator import itemgetter

from sqlalchemy import Select, bindparam, or_, select, union_all
from sqlalchemy.orm import Session

from gateway.models import AuthorType, Message, OutboxMessage, Ticket
from gateway.outbound.compose import CUSTOMER_KINDS
from gateway.storage import statements

MAX_REFERENCES = 20
# Rows read from each end of each part. The newest end reads more than it keeps: ids that
# repeat (one Message-ID delivered twice) or cannot be written back are dropped after reading.
_OLDEST_ROWS = 4
_NEWEST_ROWS = 64
_MESSAGE_ID = re.compile(r"[^\s<>]+")  # ids we can write back into a header as <id>


@dataclass(frozen=True, slots=True)
class Thread:
    """The conversation an email continues: the id it answers and the ids before it."""

    in_reply_to: str | None
    references: tuple[str, ...]


def conversation_thread(
    session: Session, ticket: Ticket, *, for_customer: bool, before: OutboxMessage | None = None
) -> Thread:
    """The thread of `ticket` as an email for a customer (or for agents) continues it.

    With `before`, the thread is the one that outbox row was queued into: nothing newer,
    not itself.
    """
    params: dict[str, object] = {"ticket_id": ticket.id}
    if before is not None:
        params |= {"before_at": before.created_at, "before_id": before.id}
    rows = statements.rows(_THREADS[for_customer, before is not None], session.connection(), params)
    # Both ends of both parts, merged by time; a row read from both ends is the same id twice.
    ordered = sorted(rows, key=itemgetter(1))
    ids = list(dict.fromkeys(rfc for rfc, _ in ordered if rfc and _MESSAGE_ID.fullmatch(rfc)))
    if len(ids) > MAX_REFERENCES:
        ids = ids[:1] + ids[-(MAX_REFERENCES - 1) :]
    return Thread(ids[-1] if ids else None, tuple(ids))


def _ends(part: Select, order: tuple) -> list[Select]:
    """`part`'s oldest and newest rows by `order` (an index on the ticket), as two selects."""
    ends = []
    for limit, key in ((_OLDEST_ROWS, order), (_NEWEST_ROWS, tuple(column.desc() for column in order))):
        end = part.order_by(*key).limit(limit).subquery()
        ends.append(select(end.c.rfc, end.c.at))
    return ends


def _thread_statement(*, for_customer: bool, before: bool) -> str:
    """The thread's Message-IDs and times, unordered; one prepared statement per shape."""
    received = select(Message.rfc_message_id.label("rfc"), Message.created_at.label("at")).where(
        Message.ticket_id == bindparam("ticket_id"),
        Message.rfc_message_id.is_not(None),
        Message.author_type == AuthorType.CUSTOMER,
    )
    sent = select(OutboxMessage.rfc_message_id.label("rfc"), OutboxMessage.created_at.label("at")).where(
        OutboxMessage.ticket_id == bindparam("ticket_id")
    )
    if for_customer:
        sent = sent.where(or_(*(OutboxMessage.kind == kind for kind in CUSTOMER_KINDS)))
    if before:
        received = received.where(Message.created_at <= bindparam("before_at"))
        sent = sent.where(OutboxMessage.id < bindparam("before_id"))
    # Rows are numbered in the order they were written, which is the order of their times.
    parts = [*_ends(received, (Message.id,)), *_ends(sent, (OutboxMessage.id,))]
    shape = f"{'customer' if for_customer else 'all'}{'_before' if before else ''}"
    return statements.prepare(f"compose.thread_{shape}", union_all(*parts))


# Prepared: the outbox reads a thread for every email it sends (bench/RESULTS.md, "Prepared statements").
_THREADS = {
    (for_customer, before): _thread_statement(for_customer=for_customer, before=before)
    for for_customer in (False, True)
    for before in (False, True)
}
