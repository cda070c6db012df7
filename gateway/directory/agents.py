"""The support team: agents, the mailboxes they work, and their API keys.

`add_agent` creates or updates an agent and makes them a member of the named mailboxes
(every mailbox when none is named); membership decides who is notified and whose emailed
replies and API calls a mailbox accepts. An API key is `wk_<prefix>_<secret>`: the prefix
finds the row, the database keeps only the SHA-256 of the whole key, and the key is shown
once, and `revoke_api_keys` retires them. `remove_agent` takes an agent off the team and
`list_agents` shows who is on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.directory.mailboxes import normalize_address
from gateway.models import Agent, AgentApiKey, Mailbox, MailboxMembership, utcnow
from gateway.storage.upsert import insert_ignore

LAST_USED_RESOLUTION = timedelta(minutes=1)


class AgentError(ValueError):
    """An agent operation that cannot be done as asked."""


def add_agent(
    session: Session,
    email: str,
    name: str = "",
    mailboxes: list[str] | None = None,
    *,
    notify_new_tickets: bool = True,
    notify_customer_messages: bool = True,
) -> Agent:
    """Create (or rename and reactivate) an agent and join the given mailboxes, or all.

    The notification preferences apply to those memberships, also to ones that existed.
    """
    try:
        email = normalize_address(email)
    except ValueError as error:
        raise AgentError(f"{email!r} is not an email address like tom@example.com") from error
    agent = session.scalar(select(Agent).where(Agent.email == email))
    if agent is None:
        agent = Agent(email=email, name=name, created_at=utcnow())
        session.add(agent)
    agent.name = name or agent.name
    agent.active = True
    session.flush()
    query = select(Mailbox)
    wanted = {m.strip().lower() for m in mailboxes or ()}
    if mailboxes is not None:
        query = query.where(Mailbox.address.in_(wanted))
    boxes = list(session.scalars(query).all())
    if mailboxes is not None and len(boxes) != len(wanted):
        raise AgentError(f"unknown mailbox among {', '.join(sorted(wanted))}")
    for box in boxes:
        values = {"mailbox_id": box.id, "agent_id": agent.id, "created_at": utcnow()}
        dialect = session.get_bind().dialect.name
        session.execute(insert_ignore(dialect, MailboxMembership, values, ["mailbox_id", "agent_id"]))
    session.execute(
        update(MailboxMembership)
        .where(MailboxMembership.agent_id == agent.id, MailboxMembership.mailbox_id.in_([b.id for b in boxes]))
        .values(notify_new_ticket=notify_new_tickets, notify_customer_message=notify_customer_messages)
    )
    return agent


def mailbox_ids_of(session: Session, agent: Agent) -> list[int]:
    rows = session.scalars(select(MailboxMembership.mailbox_id).where(MailboxMembership.agent_id == agent.id))
    return list(rows.all())


def works_mailbox(session: Session, agent: Agent, mailbox_id: int) -> bool:
    """The agent is active and a member of the mailbox."""
    member = session.scalar(
        select(MailboxMembership.id).where(
            MailboxMembership.agent_id == agent.id, MailboxMembership.mailbox_id == mailbox_id
        )
    )
    return agent.active and member is not None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, agent_email: str, label: str = "") -> str:
    """A new API key for the agent; the caller shows it once, it cannot be recovered."""
    agent = active_agent(session, agent_email)
    prefix = base64.b32encode(secrets.token_bytes(5)).decode().lower()
    key = f"wk_{prefix}_{secrets.token_urlsafe(32)}"
    session.add(AgentApiKey(agent_id=agent.id, prefix=prefix, digest=_digest(key), label=label, created_at=utcnow()))
    session.flush()
    return key


def revoke_api_keys(session: Session, agent_email: str) -> int:
    """Revoke every key of the agent (a lost laptop); returns how many were still valid."""
    agent = active_agent(session, agent_email)
    revoked = session.execute(
        update(AgentApiKey)
        .where(AgentApiKey.agent_id == agent.id, AgentApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return revoked.rowcount


def agent_for_api_key(session: Session, key: str) -> Agent | None:
    """The active agent an unrevoked key belongs to, or None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "wk":
        return None
    row = session.scalar(
        select(AgentApiKey).where(AgentApiKey.prefix == parts[1], AgentApiKey.revoked_at.is_(None))
    )
    if row is None or not hmac.compare_digest(row.digest, _digest(key)):
        return None
    agent = session.get(Agent, row.agent_id)
    if agent is None or not agent.active:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return agent


def active_agent(session: Session, email: str) -> Agent:
    agent = session.scalar(select(Agent).where(Agent.email == email.strip().lower(), Agent.active.is_(True)))
    if agent is None:
        raise AgentError(f"no active agent {email}; add one with `wicket agents add`")
    return agent


@dataclass(frozen=True, slots=True)
class AgentSummary:
    """An agent as `wicket agents list` shows it."""

    email: str
    name: str
    active: bool
    mailboxes: tuple[str, ...]


def list_agents(session: Session) -> list[AgentSummary]:
    """Every agent, active or removed, with the mailboxes they work, by address."""
    agents = session.scalars(select(Agent).order_by(Agent.email)).all()
    rows = session.execute(
        select(MailboxMembership.agent_id, Mailbox.address)
        .join(Mailbox, Mailbox.id == MailboxMembership.mailbox_id)
        .order_by(Mailbox.address)
    )
    boxes: dict[int, list[str]] = {}
    for agent_id, address in rows:
        boxes.setdefault(agent_id, []).append(address)
    return [AgentSummary(a.email, a.name, a.active, tuple(boxes.get(a.id, ()))) for a in agents]


def remove_agent(session: Session, email: str) -> Agent:
    """Take an agent off the team: no more notifications, emailed replies or API calls.

    The row stays, so the agent's past replies keep their author; `add_agent` brings them
    back. Their API keys are revoked, not kept for a return.
    """
    agent = active_agent(session, email)
    revoke_api_keys(session, agent.email)
    agent.active = False
    return agent
