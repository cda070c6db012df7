"""Ticket numbers: each mailbox's counter, which a processing transaction never holds.

A ticket's `ref` (#1001, #1002, …) comes from its mailbox's `next_ref`. Taking a number
locks that row until the transaction commits, and a processing transaction commits up to
32 messages: a second worker opening a ticket in the same mailbox would wait for all of
them, so two workers would take turns (docs/architecture.md, "Ticket numbers").

A worker therefore keeps `TicketNumbers`: blocks of numbers it reserved, each in a
transaction of its own and handed out, once that has committed, one by one as it opens
tickets. Opening a ticket in a mailbox with no reserved numbers left raises
`NumbersNeeded`; the processor rolls that message back, reserves a block and runs it
again. At a clean stop the worker gives the unused rest of each block back, when nobody
reserved after it, so a single node numbers its tickets without gaps across restarts.
Numbers stay unique in a mailbox; they can skip (a crash, a message rolled back after
taking one) and two workers' tickets interleave in their numbering: a reference is an
identifier, not a count.

A session with no `TicketNumbers` attached (`next_number`) takes one number from the
counter in its own transaction, by the same statement: a short transaction holds the
lock only briefly.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, update
from sqlalchemy.orm import Session

from gateway.models import Mailbox
from gateway.storage import statements
from gateway.storage.database import Database

_MAILBOXES = Mailbox.__table__
# Core: a loaded Mailbox keeps its old next_ref, which nothing reads.
_TAKE = statements.prepare(
    "tickets.take_numbers",
    update(_MAILBOXES)
    .where(_MAILBOXES.c.id == bindparam("mailbox_id"))
    .values(next_ref=_MAILBOXES.c.next_ref + bindparam("count"))
    .returning(_MAILBOXES.c.next_ref - bindparam("count")),
)
# Unused numbers go back only while the counter still stands where the block ended.
_GIVE_BACK = statements.prepare(
    "tickets.give_back_numbers",
    update(_MAILBOXES)
    .where(_MAILBOXES.c.id == bindparam("mailbox_id"), _MAILBOXES.c.next_ref == bindparam("end"))
    .values(next_ref=bindparam("first")),
)
_NUMBERS = "wicket.ticket_numbers"  # Session.info key


def take_numbers(connection: Connection, mailbox_id: int, count: int) -> int:
    """Move `mailbox_id`'s counter on by `count`; the first of the numbers taken."""
    first = statements.scalar(_TAKE, connection, {"mailbox_id": mailbox_id, "count": count})
    if first is None:
        raise LookupError(f"mailbox {mailbox_id} does not exist")
    return int(first)


class NumbersNeeded(Exception):  # noqa: N818 - a request, not an error
    """The session's `TicketNumbers` has no number left for this mailbox."""

    def __init__(self, mailbox_id: int) -> None:
        super().__init__(f"no ticket numbers reserved for mailbox {mailbox_id}")
        self.mailbox_id = mailbox_id


@dataclass(slots=True)
class _Block:
    next: int
    end: int  # one past the last number


class TicketNumbers:
    """One worker's reserved ticket numbers, per mailbox (see the module docstring)."""

    def __init__(self, block: int) -> None:
        self._block = block
        self._blocks: dict[int, _Block] = {}

    def take(self, mailbox_id: int) -> int:
        found = self._blocks.get(mailbox_id)
        if found is None or found.next >= found.end:
            raise NumbersNeeded(mailbox_id)
        found.next += 1
        return found.next - 1

    async def reserve(self, db: Database, mailbox_id: int) -> None:
        """A new block for `mailbox_id`, taken in a transaction of its own.

        The block is handed out only once that transaction has committed: numbers from a
        transaction that rolled back were never taken, and another worker may take them.
        """
        count = self._block
        first = await db.write(lambda session: take_numbers(session.connection(), mailbox_id, count))
        self._blocks[mailbox_id] = _Block(first, first + count)

    def holding(self) -> bool:
        """Whether any reserved number is still unused."""
        return any(block.next < block.end for block in self._blocks.values())

    def give_back(self, session: Session) -> None:
        """Return each block's unused numbers where nobody reserved after us; forget them all."""
        blocks, self._blocks = self._blocks, {}
        for mailbox_id, block in blocks.items():
            if block.next < block.end:
                params = {"mailbox_id": mailbox_id, "end": block.end, "first": block.next}
                statements.rows(_GIVE_BACK, session.connection(), params)

    def attach(self, session: Session) -> None:
        """Tickets opened in `session` take their numbers from here."""
        session.info[_NUMBERS] = self


def next_number(session: Session, mailbox_id: int) -> int:
    """The number for a ticket opened now in `session` (see the module docstring)."""
    numbers: TicketNumbers | None = session.info.get(_NUMBERS)
    if numbers is None:
        return take_numbers(session.connection(), mailbox_id, 1)
    return numbers.take(mailbox_id)
