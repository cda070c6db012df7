"""The webhook payloads as models, for the `webhooks` section of the agent API's OpenAPI document.

The bodies themselves are built in gateway/outbound/webhooks/payloads.py; these models
describe them (the tests parse real deliveries with them, extra fields forbidden), and
`webhook_operations` turns them into OpenAPI 3.1 `webhooks` entries, each with the three
Standard Webhooks headers a receiver verifies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from portal.views.verdict_schema import SenderVerdicts


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookPerson(_Strict):
    email: str
    name: str


class WebhookTicket(_Strict):
    id: str = Field(description="The ticket's public id (the agent API's ticket_id).")
    ref: int
    mailbox: str
    subject: str
    status: str
    flag: str | None = Field(description="auto_reply, bounce, list, dmarc_fail, or sender_unclear when the "
                             "ticket's mail named no usable sender address.")
    requester: WebhookPerson | None = Field(description="null while the sender is unclear: no contact is made "
                                            "up for mail without a valid sender address.")
    created_at: datetime


class WebhookHeader(_Strict):
    name: str
    value: str


class WebhookAttachment(_Strict):
    name: str
    content_type: str
    size: int
    sha256: str
    content_id: str | None
    inline: bool
    content: str | None = Field(default=None, description="Base64, for attachments up to the inline size limit.")
    url: str | None = Field(default=None, description="A signed download link, for larger attachments.")
    url_expires_at: datetime | None = None


class WebhookEnvelope(_Strict):
    mail_from: str
    rcpt_to: list[str]
    recipient: str = Field(description="The recipient the route matched.")


class ReceivedMessage(_Strict):
    message_id: str | None
    from_: WebhookPerson | None = Field(alias="from")
    reply_to: list[WebhookPerson]
    to: list[WebhookPerson]
    cc: list[WebhookPerson]
    subject: str
    date: datetime | None
    text: str
    html: str | None = Field(description="The HTML body, sanitized.")
    stripped_reply: str = Field(description="The new text without the quoted history.")
    headers: list[WebhookHeader]
    attachments: list[WebhookAttachment]
    envelope: WebhookEnvelope
    mailbox_hash: str = Field(description="The +tag of the recipient, if any.")
    classification: str
    verdicts: SenderVerdicts | None = Field(
        description="What SPF, DKIM, DMARC and ARC said when the message arrived; null when the message was not checked."
    )
    tickets: list[WebhookTicket] = Field(description="The tickets the message was stored on (none: webhook only).")
    route: str


class TicketCreatedData(_Strict):
    ticket: WebhookTicket
    message_id: str


class StatusChangedData(_Strict):
    ticket: WebhookTicket
    previous_status: str
    by: WebhookPerson | None = Field(description="The agent; null when the customer's mail reopened it.")


class TicketAssignedData(_Strict):
    ticket: WebhookTicket
    owner: WebhookPerson | None
    previous_owner: WebhookPerson | None


class SentEmail(_Strict):
    id: str
    kind: str
    to: list[str]
    message_id: str
    sent_at: datetime | None = None
    error: str | None = None


class EmailData(_Strict):
    ticket: WebhookTicket
    email: SentEmail


class TestData(_Strict):
    endpoint: str
    url: str


def _payload(name: str, event_type: str, data: type[BaseModel]) -> type[BaseModel]:
    fields: dict[str, Any] = {"type": (Literal[event_type], ...), "timestamp": (datetime, ...), "data": (data, ...)}
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


PAYLOADS: dict[str, type[BaseModel]] = {
    "message.received": _payload("MessageReceived", "message.received", ReceivedMessage),
    "ticket.created": _payload("TicketCreated", "ticket.created", TicketCreatedData),
    "ticket.status_changed": _payload("TicketStatusChanged", "ticket.status_changed", StatusChangedData),
    "ticket.assigned": _payload("TicketAssigned", "ticket.assigned", TicketAssignedData),
    "message.sent": _payload("MessageSent", "message.sent", EmailData),
    "delivery.failed": _payload("DeliveryFailed", "delivery.failed", EmailData),
    "webhook.test": _payload("WebhookTest", "webhook.test", TestData),
}
SIGNATURE_HEADERS = [
    {"name": "webhook-id", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "The event's id: the same on every retry, so receivers can deduplicate."},
    {"name": "webhook-timestamp", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "Seconds since the epoch when this attempt was signed."},
    {"name": "webhook-signature", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "Space-separated `v1,<base64>` HMAC-SHA256 signatures (two while a secret rotates)."},
]  # fmt: skip
RAW_NOTE = " A route can ask for the message as received instead (`message/rfc822`)."


def webhook_operations(ref: str) -> dict[str, Any]:
    """The OpenAPI `webhooks` section: one POST per event type, its body and the answers Wicket reads."""
    operations = {}
    for event_type, model in PAYLOADS.items():
        content: dict[str, Any] = {"application/json": {"schema": {"$ref": ref.format(model=model.__name__)}}}
        if event_type == "message.received":
            content["message/rfc822"] = {"schema": {"type": "string", "contentMediaType": "message/rfc822"}}
        operations[event_type] = {"post": {
            "summary": f"{event_type}, signed per the Standard Webhooks specification",
            "description": "Retried with backoff for more than a day on any answer but 2xx; 410 Gone turns the "
                           "endpoint off." + (RAW_NOTE if event_type == "message.received" else ""),
            "parameters": SIGNATURE_HEADERS,
            "requestBody": {"required": True, "content": content},
            "responses": {"2XX": {"description": "Received; not sent again."},
                          "410": {"description": "Gone: Wicket stops sending to this endpoint."}},
        }}  # fmt: skip
    return operations
