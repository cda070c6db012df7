"""Configuring mailboxes (the shared inboxes Wicket receives mail for)."""

from __future__ import annotations

from email.utils import parseaddr

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import Mailbox


class MailboxError(ValueError):
    """A mailbox address that cannot be used."""


def normalize_address(address: str) -> str:
    _, parsed = parseaddr(address.strip())
    local, at, domain = parsed.lower().rpartition("@")
    if not at or not local or "." not in domain or "+" in local:
        raise MailboxError(f"{address!r} is not a plain mailbox address like support@example.com")
    return f"{local}@{domain}"


def add_mailbox(session: Session, address: str, name: str) -> Mailbox:
    """Create a mailbox; an existing address is updated with the new name."""
    address = normalize_address(address)
    mailbox = session.scalar(select(Mailbox).where(Mailbox.address == address))
    if mailbox is None:
        mailbox = Mailbox(address=address, name=name or address)
        session.add(mailbox)
    else:
        mailbox.name = name or mailbox.name
    session.flush()
    return mailbox


def list_mailboxes(session: Session) -> list[Mailbox]:
    """Every mailbox, by address."""
    return list(session.scalars(select(Mailbox).order_by(Mailbox.address)).all())
