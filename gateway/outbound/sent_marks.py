"""Marking delivered outbox rows `sent`: a group commit beside the sending.

After the relay's 250 a row must be marked sent in a committed transaction, or it is sent
again once its lease runs out (delivery is at-least-once: docs/architecture.md, "The
leased queue"). One transaction per email made the commit, not the relay, the outbox's
pace. `SentMarks` collects the rows sent while it lingers (`SENT_MARK_LINGER_SECONDS`,
or until the worker's claim is all sent) and marks them in one transaction, while the
worker goes on sending. A relay that answers within the linger has a claim marked in one
commit; a slow one has each email marked while the next are sent. A crash therefore
resends at most the emails of the linger and one commit, and the resent copy keeps its
Message-ID, so receivers that deduplicate show it once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from sqlalchemy.orm import Session

from gateway.models import OutboxMessage
from gateway.storage.database import Database

SENT_MARK_LINGER_SECONDS = 0.05  # far below a lease, about a relay's answer on a LAN


class SentMarks:
    """Rows the relay took, marked sent in shared transactions by `mark(session, row)`."""

    def __init__(self, db: Database, mark: Callable[[Session, OutboxMessage], None]) -> None:
        self._db = db
        self._mark = mark
        self._waiting: list[OutboxMessage] = []
        self._committing: asyncio.Task[None] | None = None
        self._at_once = asyncio.Event()
        self._since = 0.0  # when the oldest waiting row was added (the event loop's clock)

    def add(self, row: OutboxMessage) -> None:
        """Mark `row` sent in a commit within the linger; starts one if none is running."""
        if not self._waiting:
            self._since = asyncio.get_running_loop().time()
        self._waiting.append(row)
        if self._committing is None or self._committing.done():
            self._committing = asyncio.ensure_future(self._commit_all())

    async def flush(self) -> None:
        """Commit what waits without lingering, and wait until every row added is committed;
        re-raises a failed commit.

        Shielded: a worker that is stopping still records what the relay already has.
        """
        self._at_once.set()
        while self._committing is not None:
            committing = self._committing
            try:
                await asyncio.shield(committing)
            except asyncio.CancelledError:
                await committing
                raise
            finally:
                if committing is self._committing and committing.done():
                    self._committing = None

    async def _commit_all(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            left = self._since + SENT_MARK_LINGER_SECONDS - loop.time()  # rows added during a commit lingered then
            if left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._at_once.wait(), left)
            rows, self._waiting = self._waiting, []

            def mark(session: Session, rows: list[OutboxMessage] = rows) -> None:
                for row in rows:
                    self._mark(session, row)

            await self._db.write(mark)
