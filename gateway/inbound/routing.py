"""The routing table: which recipient addresses Wicket accepts mail for, and where it goes.

A recipient is routable when it is a configured mailbox address, a correctly signed reply
address of one, or an address a route rule covers (gateway/inbound/route_rules.py).
Everything else is refused at `RCPT TO`, so the listener is never an open relay. The
mailboxes and the rules are cached in memory and reloaded at most once a second when an
unknown address is seen, so a new mailbox or route works without a restart and a flood of
unknown recipients cannot hammer the database.

`plan` decides, during processing, what happens to one message: the mailboxes it makes
or threads a ticket in, and the webhook endpoints it is pushed to. A signed reply address
always goes to its ticket; for other recipients the matching rules decide, and a mailbox
address no rule matches makes a ticket in its mailbox, as it always has.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from gateway.inbound.route_rules import RULES, RouteRule, load_rules, matching, rule_domains
from gateway.mail.parse.headers import Headers
from gateway.models import Mailbox
from gateway.settings import SecretKey
from gateway.storage.database import Database
from gateway.tickets.events import Push
from gateway.tickets.reply_address import ReplyAddress, parse_reply_address, split_plus

_MAILBOXES = select(Mailbox.address, Mailbox.id)


@dataclass(frozen=True, slots=True)
class Route:
    """Where one envelope recipient leads."""

    mailbox_id: int
    mailbox_address: str
    reply: ReplyAddress | None


@dataclass(slots=True)
class Plan:
    """What processing does with one message: tickets by mailbox, and webhook pushes."""

    mailboxes: dict[int, Route] = field(default_factory=dict)
    pushes: list[Push] = field(default_factory=list)


class Router:
    RELOAD_INTERVAL = 1.0

    def __init__(self, db: Database, keys: tuple[SecretKey, ...]) -> None:
        self._db = db
        self._keys = keys
        self._mailboxes: dict[str, int] = {}
        self._addresses: dict[int, str] = {}
        self._rules: tuple[RouteRule, ...] = ()
        self._local_domains: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")

    async def reload(self) -> None:
        await self._db.read(self.load)

    def load(self, connection: Connection) -> None:
        """Read the mailboxes and the route rules afresh (for `Database.read`, or inside a unit of work)."""
        self._load(connection.execute(_MAILBOXES).all(), connection.execute(RULES).all())

    def accepted(self, address: str) -> bool:
        """Whether the table as last loaded takes mail for `address` (no database)."""
        address = address.strip().lower()
        return self.lookup(address) is not None or bool(matching(self._rules, address, self._local_domains, None))

    def accepts(self, connection: Connection, address: str) -> bool:
        """Whether mail for an envelope recipient is taken (a mailbox, a reply address or a route).

        An unknown address reloads the table through `connection` (at most once a second);
        callers outside a unit of work try `accepted` first and read only on a miss.
        """
        if self.accepted(address):
            return True
        if self._stale():
            self.load(connection)
            return self.accepted(address)
        return False

    def resolve(self, connection: Connection, address: str) -> Route | None:
        """The mailbox route for an envelope recipient, or None when it has none.

        An unknown address reloads the table through `connection` (at most once a second).
        Callers outside a unit of work try `lookup` first and read only on a miss, so a
        known address costs no connection.
        """
        route = self.lookup(address)
        if route is None and self._stale():
            self.load(connection)
            route = self.lookup(address)
        return route

    def plan(self, connection: Connection, recipients: Iterable[str], headers: Headers) -> Plan:
        """The tickets and pushes one message's recipients lead to (see the module docstring)."""
        if self._stale():
            self.load(connection)
        plan = Plan()
        for recipient in recipients:
            address = recipient.strip().lower()
            route = self.lookup(address)
            rules = matching(self._rules, address, self._local_domains, headers)
            if route is not None and (route.reply is not None or not rules):
                plan.mailboxes.setdefault(route.mailbox_id, route)
            for rule in rules:
                if rule.mailbox_id is not None and (route is None or route.reply is None):
                    mailbox_address = self._addresses.get(rule.mailbox_id, address)
                    plan.mailboxes.setdefault(rule.mailbox_id, Route(rule.mailbox_id, mailbox_address, None))
                if rule.endpoint_id is not None:
                    plan.pushes.append(Push(rule.endpoint_id, rule.payload_format, address, rule.public_id))
        return plan

    def _stale(self) -> bool:
        return time.monotonic() - self._loaded_at >= self.RELOAD_INTERVAL

    def _load(self, mailboxes: Iterable[tuple[str, int]], rules: Iterable[tuple[object, ...]]) -> None:
        self._mailboxes = {address.lower(): id_ for address, id_ in mailboxes}
        self._addresses = {id_: address for address, id_ in self._mailboxes.items()}
        self._rules = load_rules(rules)
        domains = {address.rpartition("@")[2] for address in self._mailboxes} | rule_domains(self._rules)
        self._local_domains = frozenset(domains)
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
