"""What outbound mail carries to name its ticket: the subject tag and the body marker.

The subject tag is `[#<ref>]`; the body marker is `[wicket:<ticket>.<kid>.<mac>]`.

Mail clients that drop threading headers still keep the quoted body, so every email
Wicket sends carries a marker naming its ticket. The marker is signed: an HMAC over the
mailbox, the ticket's public id and the address the email was sent to, under the key
whose id it names, so keys rotate without breaking mail already sent. A marker proves
only that someone once received mail about the ticket; it grants nothing. Threading by it
(gateway/inbound/conversations.py) additionally requires the sender to take part in the ticket
already, so a forwarded or leaked marker lets nobody in (docs/architecture.md,
"Threading").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.models import Mailbox, Ticket
from gateway.settings import SecretKey

# Ticket public ids are 16 characters of lower-case base32; key ids 8 hex digits.
_MARKER = re.compile(r"\[wicket:([a-z2-7]{16})\.([0-9a-f]{8})\.([a-z2-7]{16})\]")
# Any marker, signed or not: agents' text is cleaned of all of them.
ANY_MARKER = re.compile(r"\[wicket:([a-z2-7]{16})(?:\.[0-9a-f]{8}\.[a-z2-7]{16})?\]")


@dataclass(frozen=True, slots=True)
class Marker:
    """A marker found in a message's text, not yet verified."""

    ticket_public_id: str
    kid: str
    mac: str


def _mac(key: SecretKey, mailbox_address: str, ticket_public_id: str, recipient: str) -> str:
    message = f"ticket-marker|{mailbox_address.lower()}|{ticket_public_id}|{recipient.lower()}".encode()
    return base64.b32encode(hmac.digest(key.secret, message, hashlib.sha256)[:10]).decode().lower()


def format_marker(key: SecretKey, mailbox_address: str, ticket_public_id: str, recipient: str) -> str:
    """The marker for an email about a ticket sent to `recipient`."""
    return f"[wicket:{ticket_public_id}.{key.kid}.{_mac(key, mailbox_address, ticket_public_id, recipient)}]"


def subject_tag(ticket: Ticket) -> str:
    """The tag in the subject of every email about `ticket`."""
    return f"[#{ticket.ref}]"


def ticket_marker(key: SecretKey, mailbox: Mailbox, ticket: Ticket, recipient: str) -> str:
    """The signed marker an email about `ticket` to `recipient` carries in its body."""
    return format_marker(key, mailbox.address, ticket.public_id, recipient)


def find_markers(text: str) -> list[Marker]:
    """Every well-formed signed marker in `text`, in order, without duplicates."""
    return [Marker(*found) for found in dict.fromkeys(_MARKER.findall(text))]


def mentioned_public_ids(text: str) -> list[str]:
    """The ticket public ids named by any marker in `text`, signed or not."""
    return list(dict.fromkeys(ANY_MARKER.findall(text)))


def verifies(
    marker: Marker, keys: Iterable[SecretKey], mailbox_address: str, recipients: Iterable[str]
) -> bool:
    """Whether `marker` was made by us for this mailbox and one of `recipients`."""
    key = next((k for k in keys if k.kid == marker.kid), None)
    if key is None:
        return False
    return any(
        hmac.compare_digest(_mac(key, mailbox_address, marker.ticket_public_id, recipient), marker.mac)
        for recipient in recipients
    )
