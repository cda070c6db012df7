"""The agent API's shapes: request and response models of its tickets, contacts and notification settings.

Requests are validated with the same pydantic models the OpenAPI document
(`api_document`) is generated from, so what `/api/v1/openapi.json` promises is exactly
what the handlers accept: bodies are strict JSON objects and query strings without
unknown fields, query numbers are plain digits. Responses are serialised through their
models too. The routes' models are `api_route_schema`'s.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from gateway.models import AuthorType, NotifyPolicy, TicketPriority, TicketStatus
from portal.views.verdict_schema import SenderVerdicts

PUBLIC_ID = r"^[a-z2-7]{16}$"
REF = "#/components/schemas/{model}"


def _digits(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,9}", value):
        raise ValueError("must be a whole number written in digits")
    return value


QueryInt = Annotated[int, BeforeValidator(_digits)]


class Person(BaseModel):
    email: str
    name: str


class TicketSummary(BaseModel):
    id: str = Field(description="The ticket's public id, used in URLs.")
    ref: int = Field(description="The number in subjects, e.g. 1001 for [#1001]; unique per mailbox.")
    mailbox: str
    subject: str
    status: TicketStatus
    flag: str | None = Field(
        description="Why the ticket was opened by non-normal mail (auto_reply, bounce, list), dmarc_fail "
        "when its first mail failed DMARC for its From domain, or sender_unclear when it named no usable "
        "sender address (no requester until one is named)."
    )
    requester: Person | None = Field(
        description="null while the sender is unclear: nobody is mailed, and replies are refused until "
        "POST /api/v1/tickets/{ticket_id}/requester names one."
    )
    unclear_from: str | None = Field(
        description="What the From header of a sender-unclear ticket's mail said, escaped (control characters "
        "as \\x.. escapes); null otherwise or when there was no From header."
    )
    owner: str | None = Field(description="The owning agent's address; the first agent to answer, unless assigned.")
    priority: TicketPriority
    tags: list[str]
    created_at: datetime
    last_activity_at: datetime


class AttachmentOut(BaseModel):
    id: str
    filename: str
    content_type: str = Field(description="The type given by the sender (served as application/octet-stream).")
    size: int = Field(description="Bytes.")
    sha256: str = Field(description="Hex SHA-256 of the bytes.")
    inline: bool = Field(description="A picture shown in the message's HTML (cid:).")
    url: str = Field(description="Where the API serves the bytes to agents of the ticket's mailbox.")


class TicketMessage(BaseModel):
    id: str
    author_type: AuthorType
    author: Person
    internal: bool
    classification: str
    thread_rule: str
    subject: str
    text: str = Field(description="The new text without quoted history.")
    body_text: str
    sender_verdicts: SenderVerdicts | None = Field(
        default=None, description="Inbound mail's sender checks; null when the message was never checked."
    )
    created_at: datetime
    attachments: list[AttachmentOut] = Field(default_factory=list)


class Delivery(BaseModel):
    id: str
    kind: str
    to: list[str]
    status: str = Field(description="queued, sending, sent, failed or bounced.")
    attempts: int
    last_error: str | None
    sent_at: datetime | None


class Rating(BaseModel):
    rating: Literal["good", "bad"] = Field(description="The customer's answer to \"How did we do?\" after a resolution.")
    comment: str
    by: str = Field(description="The address of the customer who answered.")
    resolved_at: datetime = Field(description="The resolution rated; each is rated at most once.")
    rated_at: datetime


class TicketDetail(TicketSummary):
    messages: list[TicketMessage]
    deliveries: list[Delivery]
    ratings: list[Rating]


class TicketPage(BaseModel):
    tickets: list[TicketSummary]
    next_offset: int | None


class ContactOut(BaseModel):
    id: str
    email: str
    name: str
    created_at: datetime


class ContactPage(BaseModel):
    contacts: list[ContactOut]
    next_offset: int | None


class ApiError(BaseModel):
    error: str
    status: int


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Text = Annotated[str, Field(min_length=1, max_length=20_000, pattern=r"\S")]


class ReplyRequest(_Body):
    text: Text = Field(description="The reply; command lines at the top (#internal, #status, #assign, #unassign, "
                       "#priority, #tag) are carried out and left out of the customer's mail.")
    status: TicketStatus | None = Field(default=None, description="Also set this status.")


class NoteRequest(_Body):
    text: Text


class StatusRequest(_Body):
    status: TicketStatus


class RequesterRequest(_Body):
    email: str = Field(min_length=3, max_length=320, description="The requester's address (a valid address: "
                       "email-validator's syntax check, no DNS).")
    name: str = Field(default="", max_length=200, description="Their name, if the contact is new.")


class MailboxNotifications(BaseModel):
    mailbox: str
    policy: NotifyPolicy = Field(description="Which tickets the agent is mailed about: all, mine_and_unassigned, mine.")
    daily_digest: bool
    digest_hour: int = Field(description="The hour (UTC) the mailbox's digests go out.")


class NotificationSettings(BaseModel):
    mailboxes: list[MailboxNotifications]


MailboxAddress = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+$")]


class NotificationRequest(_Body):
    policy: NotifyPolicy | None = None
    daily_digest: bool | None = None
    mailboxes: list[MailboxAddress] | None = Field(
        default=None, max_length=50, description="Only these mailboxes (default: all the agent's)."
    )


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TicketQuery(_Query):
    q: str = Field(default="", max_length=200, description="Words in the subject or requester, or a ticket number.")
    status: TicketStatus | None = None
    limit: QueryInt = Field(default=50, ge=1, le=200)
    offset: QueryInt = Field(default=0, ge=0, le=1_000_000)


class ContactQuery(_Query):
    q: str = Field(default="", max_length=200, description="Part of the address or name.")
    limit: QueryInt = Field(default=50, ge=1, le=200)
    offset: QueryInt = Field(default=0, ge=0, le=1_000_000)
