"""Contacts: the people who write to support, one row per email address.

A contact is made the first time an address is seen, by whichever door it comes in
(mail, the portal's SSO handoff, an operator); concurrent first sightings of one address
make one row.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gateway.models import Contact, new_public_id, utcnow
from gateway.storage.upsert import insert_ignore

_CONTACT_BY_EMAIL = select(Contact).where(Contact.email == bindparam("email"))


def contact_for(session: Session, email: str, name: str = "") -> Contact:
    """The contact for an address, created on first sight (safe under concurrency)."""
    email = email.strip().lower()[:320]
    contact = session.scalar(_CONTACT_BY_EMAIL, {"email": email})
    if contact is None:
        values = {"email": email, "name": name[:200], "public_id": new_public_id(), "created_at": utcnow()}
        session.connection().execute(insert_ignore(session.get_bind().dialect.name, Contact, values, ["email"]))
        contact = session.execute(_CONTACT_BY_EMAIL, {"email": email}).scalar_one()
    if name and not contact.name:
        contact.name = name[:200]
    return contact
