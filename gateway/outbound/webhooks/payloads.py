"""The bodies Wicket posts to webhook endpoints.

Every JSON body is `{"type", "timestamp", "data"}` (the Standard Webhooks payload shape);
the schemas are in the agent API's OpenAPI document, under `webhooks`. `message.received`
carries the parsed message the way Postmark's inbound hook does: addresses with names,
subject, text, sanitized HTML, the new text without quoted history, headers as a list,
attachments (name, type, size, SHA-256, and the content inline as base64 up to
`webhook_inline_attachment_bytes`, else a signed expiring download URL), the envelope, the
plus tag of the recipient (`mailbox_hash`), the sender verdicts and the tickets it went
to. A route may ask for the raw message instead (`message/rfc822`, the bytes as received).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from gateway.mail.parse import ParsedEmail
from gateway.mail.addresses import Address
from gateway.models import Contact, Mailbox, PayloadFormat, Ticket
from gateway.outbound.webhooks.files import attachment_url
from gateway.settings import Settings
from gateway.tickets.events import MessageReceived, Push
from gateway.tickets.reply_address import split_plus

JSON = "application/json"
RAW = "message/rfc822"


def body(event_type: str, data: dict[str, Any], now: datetime) -> bytes:
    """A JSON body as posted: compact, UTF-8, keys in a stable order."""
    document = {"type": event_type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def sender_verdicts(received: MessageReceived) -> dict[str, Any] | None:
    """SPF, DKIM, DMARC and ARC results for the message, as stored on it; None when it was not checked."""
    return received.verdicts


def person(email: str, name: str | None) -> dict[str, str]:
    return {"email": email, "name": name or ""}


def ticket_data(ticket: Ticket, mailbox: Mailbox, requester: Contact | None) -> dict[str, Any]:
    return {
        "id": ticket.public_id,
        "ref": ticket.ref,
        "mailbox": mailbox.address,
        "subject": ticket.subject,
        "status": str(ticket.status),
        "flag": ticket.flag,
        "requester": person(requester.email, requester.name) if requester else None,
        "created_at": ticket.created_at.isoformat(),
    }


def message_received(
    settings: Settings, received: MessageReceived, push: Push, now: datetime, tickets: list[dict[str, Any]]
) -> tuple[bytes, str]:
    """The `message.received` body for one push, and its content type."""
    if push.payload_format == PayloadFormat.RAW:
        return received.raw, RAW
    mail = received.parsed
    data = {
        "message_id": mail.message_id,
        "from": _address(mail.sender) if mail.sender and mail.sender.email else None,  # null: no usable sender
        "reply_to": [_address(a) for a in mail.reply_to],
        "to": [_address(a) for a in mail.to],
        "cc": [_address(a) for a in mail.cc],
        "subject": mail.subject,
        "date": mail.date.isoformat() if mail.date else None,
        "text": mail.text,
        "html": (mail.display.body + mail.display.quoted) or None,
        "stripped_reply": mail.reply_text,
        "headers": [{"name": name, "value": value} for name, value in mail.headers],
        "attachments": _attachments(settings, received.inbound_id, mail, now),
        "envelope": {"mail_from": received.mail_from, "rcpt_to": list(received.rcpt_tos), "recipient": push.recipient},
        "mailbox_hash": split_plus(push.recipient)[1] or "",
        "classification": str(received.classification.kind),
        "verdicts": sender_verdicts(received),
        "tickets": tickets,
        "route": push.route,
    }
    return body("message.received", data, now), JSON


def _address(address: Address) -> dict[str, str]:
    return person(address.email, address.name)


def _attachments(settings: Settings, inbound_id: int, mail: ParsedEmail, now: datetime) -> list[dict[str, Any]]:
    found = []
    for index, attachment in enumerate(mail.attachments):
        item: dict[str, Any] = {
            "name": attachment.filename,
            "content_type": attachment.content_type,
            "size": attachment.size,
            "sha256": attachment.sha256,
            "content_id": attachment.content_id,
            "inline": attachment.inline,
        }
        if attachment.size <= settings.webhook_inline_attachment_bytes:
            item["content"] = base64.b64encode(attachment.data).decode()
        else:
            url, expires_at = attachment_url(settings, inbound_id, index, now)
            item["url"], item["url_expires_at"] = url, expires_at.isoformat()
        found.append(item)
    return found
