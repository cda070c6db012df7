"""What an agent's notification of a new ticket or a customer's message says.

`notification_context` is the template context of `notification.txt`/`.html`
(gateway/outbound/notify.py queues one per agent who wants it): the headline, the
customer's new text, the sender checks with a warning when DMARC failed, and, for mail
whose From, Sender, Reply-To and envelope named no usable address, what From said
(escaped) and how to name the requester (docs/architecture.md, "Mail with no usable sender").
"""

from __future__ import annotations

from gateway.mail.addresses import escaped_header
from gateway.mail.quotes import REPLY_MARKER
from gateway.mail.verdicts import SenderVerdicts
from gateway.models import Message
from gateway.tickets.events import MessageAdded, TicketCreated
from gateway.tickets.markers import subject_tag

MAX_NOTIFIED_TEXT = 20_000


def notification_context(event: TicketCreated | MessageAdded, *, new_ticket: bool) -> dict[str, str]:
    message, tag = event.message, subject_tag(event.ticket)
    who = f"{message.from_name} <{message.from_email}>" if message.from_name else message.from_email
    unclear = _unclear_from(event)
    if unclear:
        who = "an unclear sender"
    if new_ticket:
        headline = f"New ticket {tag} from {who}"
    else:
        reopened = isinstance(event, MessageAdded) and event.reopened
        headline = f"{who} wrote on {tag}{' (reopened)' if reopened else ''}"
    return {
        "reply_line": REPLY_MARKER,
        "headline": headline,
        "text": (message.reply_text or message.body_text).strip()[:MAX_NOTIFIED_TEXT],
        "customer": message.from_name or message.from_email or "the customer",
        "classification": message.classification,
        "unclear_from": unclear,
        "no_requester": "yes" if event.ticket.requester_id is None else "",
        **_sender_checks(message),
    }


def _unclear_from(event: TicketCreated | MessageAdded) -> str:
    """What From said, escaped, when it (and Sender, Reply-To, the envelope) named no usable
    address; "" when the message has a sender (docs/architecture.md, "Mail with no usable sender")."""
    if event.message.from_email:
        return ""
    said = escaped_header(event.parsed.headers.get("From", "")) if event.parsed else event.ticket.unclear_from
    return f"From: {said}" if said else "no From header"


def _sender_checks(message: Message) -> dict[str, str]:
    """The message's sender verdicts in one line, and whether to warn that From may be forged."""
    verdicts = SenderVerdicts.from_json(message.sender_verdicts)
    if verdicts is None:
        return {"sender_checks": "", "dmarc_failed": ""}
    return {"sender_checks": verdicts.summary(), "dmarc_failed": "yes" if verdicts.dmarc_failed else ""}
