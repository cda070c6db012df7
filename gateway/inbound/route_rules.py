"""The route table's rules as plain values, and how one rule matches a recipient and a message.

A rule (a `mail_route` row) matches an envelope recipient exactly, as the base address of
its plus-tagged forms, by domain, or as a catch-all; a catch-all covers only the domains
Wicket already receives for (its mailboxes' and its other rules' domains), so no rule can
make the listener accept mail for the whole internet. A rule with a header condition also
needs that header to contain the given text (case-insensitively); at `RCPT TO` the
header is not known yet, so the recipient alone decides whether mail is accepted. Rules
run in priority order (lower first, then oldest first) and a rule with `stop` ends the
list for that recipient.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from gateway.mail.parse.headers import Headers
from gateway.models import MailRoute, RouteMatch
from gateway.tickets.reply_address import split_plus

RULES = select(
    MailRoute.public_id, MailRoute.priority, MailRoute.match, MailRoute.pattern, MailRoute.header_name,
    MailRoute.header_contains, MailRoute.mailbox_id, MailRoute.endpoint_id, MailRoute.payload_format, MailRoute.stop,
).order_by(MailRoute.priority, MailRoute.id)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RouteRule:
    public_id: str
    priority: int
    match: str
    pattern: str
    header_name: str | None
    header_contains: str | None
    mailbox_id: int | None
    endpoint_id: int | None
    payload_format: str
    stop: bool

    def covers(self, address: str, local_domains: frozenset[str]) -> bool:
        """Whether the recipient (lower case) is one this rule is for, whatever the headers."""
        domain = address.rpartition("@")[2]
        if self.match == RouteMatch.EXACT:
            return address == self.pattern
        if self.match == RouteMatch.PLUS:
            return split_plus(address)[0] == self.pattern
        if self.match == RouteMatch.DOMAIN:
            return domain == self.pattern
        return self.match == RouteMatch.CATCH_ALL and domain in local_domains

    def accepts(self, headers: Headers) -> bool:
        """Whether the message's headers meet the rule's header condition (if it has one)."""
        if not self.header_name:
            return True
        wanted = (self.header_contains or "").lower()
        return any(wanted in value.lower() for value in headers.get_all(self.header_name))


def load_rules(rows: Iterable[Sequence[object]]) -> tuple[RouteRule, ...]:
    return tuple(RouteRule(*row) for row in rows)  # type: ignore[arg-type]


def rule_domains(rules: Iterable[RouteRule]) -> set[str]:
    """The domains rules name (a catch-all names none)."""
    return {rule.pattern.rpartition("@")[2] for rule in rules if rule.match != RouteMatch.CATCH_ALL and rule.pattern}


def matching(
    rules: Sequence[RouteRule], address: str, local_domains: frozenset[str], headers: Headers | None
) -> list[RouteRule]:
    """The rules that apply to one recipient, in order, up to and including the first `stop`.

    Without `headers` (at `RCPT TO`), header conditions are not checked.
    """
    chosen: list[RouteRule] = []
    for rule in rules:
        if rule.covers(address, local_domains) and (headers is None or rule.accepts(headers)):
            chosen.append(rule)
            if rule.stop:
                break
    return chosen
