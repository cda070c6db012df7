"""The routing table: which recipient addresses Wicket accepts mail for, and where it goes.

A recipient is routable when it is a configured mailbox address or a correctly signed
reply address of one. Everything else is refused at `RCPT TO`, so the listener is never an
open relay. The table of mailbox addresses is cached in memory and reloaded at most once a
second when an unknown address is seen, so a new mailbox works without a restart and a
flood of unknown recipients cannot hammer the database.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from gateway.models import Mailbox
from gateway.settings import SecretKey
from gateway.storage.database import Database
from gateway.tickets.reply_address import ReplyAddress, parse_reply_address, split_plus

_MAILBOXES = select(Mailbox.address, Mailbox.id)


@dataclass(frozen=True, slots=True)
class Route:
    """Where one envelope recipient leads."""

    mailbox_id: int
    mailbox_address: str
    reply: ReplyAddress | None


class Router:
    RELOAD_INTERVAL = 1.0

    def __init__(self, db: Database, keys: tuple[SecretKey, ...]) -> None:
        self._db = db
        self._keys = keys
        self._mailboxes: dict[str, int] = {}
        self._loaded_at = float("-inf")

    async def reload(self) -> None:
        await self._db.read(self.load)

    def load(self, connection: Connection) -> None:
        """Read the mailbox addresses afresh (for `Database.read`, or inside a unit of work)."""
        self._load(connection.execute(_MAILBOXES))

    def resolve(self, connection: Connection, address: str) -> Route | None:
        """The route for an envelope recipient, or None when it must be refused.

        An unknown address reloads the table through `connection` (at most once a second).
        Callers outside a unit of work try `lookup` first and read only on a miss, so a
        known address costs no connection.
        """
        route = self.lookup(address)
        if route is None and self._stale():
            self.load(connection)
            route = self.lookup(address)
        return route

    def _stale(self) -> bool:
        return time.monotonic() - self._loaded_at >= self.RELOAD_INTERVAL

    def _load(self, rows: Iterable[tuple[str, int]]) -> None:
        self._mailboxes = {address.lower(): id_ for address, id_ in rows}
        self._loaded_at = time.monotonic()

    def lookup(self, address: str) -> Route | None:
        """The route for `address` in the table as last loaded (no database)."""
        address = address.strip().lower()
        mailbox_id = self._mailboxes.get(address)
        if mailbox_id is not None:
            return Route(mailbox_id, address, None)
        mailbox_address, tag = split_plus(address)
        mailbox_id = self._mailboxes.get(mailbox_address)
        if mailbox_id is None or tag is None:
            return None
        reply = parse_reply_address(address, self._keys)
        return None if reply is None else Route(mailbox_id, mailbox_address, reply)
