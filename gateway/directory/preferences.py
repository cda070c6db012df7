"""What each agent is told, per mailbox: notification policy and the daily digest.

An agent's membership of a mailbox carries a notification policy (every ticket, only
theirs and unassigned ones, only theirs; the rule is `gateway.outbound.team_mail.follows`)
and the daily-digest opt-in; the mailbox says at which hour (UTC) its digests go out.
`wicket agents set-notify`, `wicket mailbox digest` and the agent API's
`/api/v1/me/notifications` change them through these functions. They are synchronous
units of work (`Database.write`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from gateway.directory.mailboxes import MailboxError, normalize_address
from gateway.models import Agent, Mailbox, MailboxMembership, NotifyPolicy


class PreferenceError(ValueError):
    """A preference that cannot be set as asked."""


class NotTheirMailbox(PreferenceError):
    """A mailbox named that the agent does not work (or that does not exist)."""


@dataclass(frozen=True, slots=True)
class MailboxPreferences:
    """One agent's preferences for one mailbox."""

    mailbox: str
    policy: str
    daily_digest: bool
    digest_hour: int


def parse_policy(value: str) -> NotifyPolicy:
    try:
        return NotifyPolicy(value.strip().lower().replace("-", "_"))
    except ValueError:
        choices = ", ".join(p.value.replace("_", "-") for p in NotifyPolicy)
        raise PreferenceError(f"unknown notification policy {value!r} (use {choices})") from None


def _memberships(session: Session, agent: Agent, mailboxes: list[str] | None) -> list[tuple[MailboxMembership, Mailbox]]:
    query = (
        select(MailboxMembership, Mailbox)
        .join(Mailbox, Mailbox.id == MailboxMembership.mailbox_id)
        .where(MailboxMembership.agent_id == agent.id)
        .order_by(Mailbox.address)
    )
    if mailboxes:
        query = query.where(Mailbox.address.in_([m.strip().lower() for m in mailboxes]))
    found = [(membership, mailbox) for membership, mailbox in session.execute(query)]
    if mailboxes and len(found) != len({m.strip().lower() for m in mailboxes}):
        raise NotTheirMailbox(f"{agent.email} does not work every mailbox of {', '.join(mailboxes)}")
    return found


def _active_agent(session: Session, email: str) -> Agent:
    agent = session.scalar(select(Agent).where(Agent.email == email.strip().lower(), Agent.active.is_(True)))
    if agent is None:
        raise PreferenceError(f"no active agent {email}; add one with `wicket agents add`")
    return agent


def preferences_of(connection: Connection, agent_id: int) -> list[MailboxPreferences]:
    """The agent's preferences for each mailbox they work, by address (a read: `Database.read`)."""
    rows = connection.execute(
        select(Mailbox.address, MailboxMembership.notify_policy, MailboxMembership.daily_digest, Mailbox.digest_hour)
        .join(Mailbox, Mailbox.id == MailboxMembership.mailbox_id)
        .where(MailboxMembership.agent_id == agent_id)
        .order_by(Mailbox.address)
    )
    return [MailboxPreferences(*row) for row in rows]


def set_preferences(
    session: Session,
    agent_email: str,
    *,
    mailboxes: list[str] | None = None,
    policy: NotifyPolicy | None = None,
    daily_digest: bool | None = None,
) -> list[MailboxPreferences]:
    """Change the agent's policy and digest opt-in for the named mailboxes (default: all theirs)."""
    agent = _active_agent(session, agent_email)
    for membership, _ in _memberships(session, agent, mailboxes):
        if policy is not None:
            membership.notify_policy = policy
        if daily_digest is not None:
            membership.daily_digest = daily_digest
    session.flush()
    named = {m.strip().lower() for m in mailboxes or ()}
    return [p for p in preferences_of(session.connection(), agent.id) if not named or p.mailbox in named]


def set_digest_hour(session: Session, address: str, hour: int) -> Mailbox:
    """The hour (UTC, 0-23) after which the mailbox's digests go out."""
    if not 0 <= hour <= 23:
        raise PreferenceError("the digest hour is a whole hour from 0 to 23 (UTC)")
    try:
        wanted = normalize_address(address)
    except MailboxError as error:
        raise PreferenceError(str(error)) from None
    mailbox = session.scalar(select(Mailbox).where(Mailbox.address == wanted))
    if mailbox is None:
        raise PreferenceError(f"no mailbox {address}; `wicket mailbox list` shows them")
    mailbox.digest_hour = hour
    return mailbox
