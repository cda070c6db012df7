"""The agent API's shapes: request and response models, and the OpenAPI document built from them.

Requests are validated with the same pydantic models the document is generated from, so
what `/api/v1/openapi.json` promises is exactly what the handlers accept: bodies are
strict JSON objects and query strings without unknown fields, query numbers are plain digits. Responses are
serialised through their models too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from gateway.models import AuthorType, NotifyPolicy, TicketPriority, TicketStatus
from portal.views.verdict_schema import SenderVerdicts
from portal.views.webhook_schema import PAYLOADS, webhook_operations

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


class RouteOut(BaseModel):
    id: str
    priority: int = Field(description="Lower runs first.")
    match: str = Field(description="exact, plus, domain or catch_all.")
    pattern: str
    header: str | None = Field(description="The header condition, if any.")
    mailbox: str | None = Field(description="The mailbox it makes tickets in; null: webhook only.")
    webhook: str | None = Field(description="The webhook endpoint it posts to.")
    payload_format: str = Field(description="json, or raw (message/rfc822).")
    stop: bool


class RoutePage(BaseModel):
    routes: list[RouteOut]


ADDRESS = r"^[A-Za-z0-9._%'!#$&*/=?^`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){1,4}$"  # ASCII, no +tag


class HeaderCondition(_Body):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[!-9;-~]+$", description="A header name.")
    contains: str = Field(max_length=998, description="Text the header contains (case-insensitive).")


class RouteRequest(_Body):
    match: Literal["exact", "plus"]
    pattern: str = Field(max_length=320, pattern=ADDRESS, description="An address of your mailbox's domain.")
    mailbox: str = Field(max_length=320, pattern=ADDRESS, description="One of your mailboxes: tickets are made there.")
    webhook: str | None = Field(default=None, pattern=PUBLIC_ID, description="Also post to this endpoint.")
    raw: bool = Field(default=False, description="Post the raw message instead of JSON.")
    header: HeaderCondition | None = Field(default=None, description="Only mail with this header.")
    priority: int = Field(default=100, ge=-1_000_000, le=1_000_000, strict=False)  # JSON Schema: 5.0 is an integer
    stop: bool = False


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


RESPONSES = (TicketPage, TicketDetail, TicketMessage, AttachmentOut, ContactPage, RoutePage, RouteOut, NotificationSettings,
             ApiError)
REQUESTS = (ReplyRequest, NoteRequest, StatusRequest, RequesterRequest, RouteRequest, HeaderCondition, NotificationRequest)


def _query_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional field as a query parameter: absent rather than null."""
    options = [s for s in schema.get("anyOf", []) if s != {"type": "null"}]
    return options[0] if len(options) == 1 else schema


def _parameters(query: type[BaseModel]) -> list[dict[str, Any]]:
    properties = query.model_json_schema(ref_template=REF)["properties"]
    return [{"name": name, "in": "query", "required": False, "schema": _query_schema(schema)}
            for name, schema in properties.items()]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


@dataclass(frozen=True, slots=True)
class Operation:
    summary: str
    status: str
    answer: type[BaseModel] | None  # None: the bytes of a file
    description: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    on_ticket: bool = False
    form: dict[str, Any] | None = None  # the body may also be this multipart form
    path: tuple[str, ...] = ()  # further path parameters, public ids
    on_route: bool = False
    refusals: tuple[tuple[str, str], ...] = ()  # further answers: (status, why)

    def document(self) -> dict[str, Any]:
        answer = _json(self.answer, self.description) if self.answer else _binary(self.description)
        responses = {self.status: answer, "401": _json(ApiError, "No valid API key.")}
        if self.body or self.query:
            refused = " or a file is refused by the upload limits (type, size, count)" if self.form else ""
            responses["400"] = _json(ApiError, f"The request does not match this document{refused}.")
        if self.body:
            responses["413"] = _json(ApiError, "The request body is larger than the server accepts.")
        if self.on_ticket:
            responses["404"] = _json(ApiError, "No such ticket in the agent's mailboxes.")
        if self.on_route:
            responses["404"] = _json(ApiError, "No such route making tickets in the agent's mailboxes.")
        for status, why in self.refusals:
            responses[status] = _json(ApiError, why)
        operation: dict[str, Any] = {"summary": self.summary, "responses": responses}
        parameters = _parameters(self.query) if self.query else []
        for name in ("ticket_id",) * self.on_ticket + ("route_id",) * self.on_route + self.path:
            parameters.append({"name": name, "in": "path", "required": True,
                               "schema": {"type": "string", "pattern": PUBLIC_ID}})
        if parameters:
            operation["parameters"] = parameters
        if self.body:
            content = {"application/json": {"schema": _ref(self.body)}}
            if self.form:
                content["multipart/form-data"] = {"schema": self.form}
            operation["requestBody"] = {"required": True, "content": content}
        return operation


def _binary(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}


REPLY_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["text"],
    "additionalProperties": False,
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 20_000, "pattern": r"\S"},
        "status": {"type": "string", "enum": [s.value for s in TicketStatus]},
        "attachments": {"type": "array", "items": {"type": "string", "format": "binary"},
                        "description": "Files sent with the reply; the limits of portal uploads apply."},
    },
}


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/api/v1/tickets", "get"): Operation(
        "List or search tickets", "200", TicketPage, "Tickets, most recent activity first.", query=TicketQuery
    ),
    ("/api/v1/tickets/{ticket_id}", "get"): Operation(
        "Read a ticket with its messages and deliveries", "200", TicketDetail, "The ticket.", on_ticket=True
    ),
    ("/api/v1/tickets/{ticket_id}/replies", "post"): Operation(
        "Reply to the customers (each gets a fresh link; files as a multipart form)", "201", TicketMessage,
        "The stored reply.", body=ReplyRequest, on_ticket=True, form=REPLY_FORM,
    ),
    ("/api/v1/tickets/{ticket_id}/attachments/{attachment_id}", "get"): Operation(
        "Download a file of the ticket", "200", None, "The file's bytes.", on_ticket=True, path=("attachment_id",)
    ),
    ("/api/v1/tickets/{ticket_id}/notes", "post"): Operation(
        "Add an internal note", "201", TicketMessage, "The stored note.", body=NoteRequest, on_ticket=True
    ),
    ("/api/v1/tickets/{ticket_id}/status", "post"): Operation(
        "Change the status", "200", TicketSummary, "The ticket after the change.", body=StatusRequest, on_ticket=True
    ),
    ("/api/v1/tickets/{ticket_id}/requester", "post"): Operation(
        "Name the requester of a ticket whose mail named no usable sender", "200", TicketSummary,
        "The ticket with its requester.", body=RequesterRequest, on_ticket=True,
        refusals=(("409", "The ticket has a requester already, or the address is not a customer's "
                          "(invalid, the mailbox's own, a team member's)."),),
    ),
    ("/api/v1/routes", "get"): Operation(
        "List the routes making tickets in the agent's mailboxes", "200", RoutePage, "Routes, in the order they run."
    ),
    ("/api/v1/routes", "post"): Operation(
        "Route an address of the agent's mailbox's domain to it (and optionally a webhook)", "201", RouteOut,
        "The new route.", body=RouteRequest, refusals=(
            ("403", "Not an address of the agent's mailbox's domain that no other mailbox has, or not their mailbox."),
            ("404", "No such webhook endpoint."),
        ),
    ),
    ("/api/v1/routes/{route_id}", "delete"): Operation(
        "Remove a route making tickets in one of the agent's mailboxes", "200", RouteOut, "The removed route.",
        on_route=True,
    ),
    ("/api/v1/me/notifications", "get"): Operation(
        "Read the agent's notification policy and digest, per mailbox", "200", NotificationSettings, "Settings."
    ),
    ("/api/v1/me/notifications", "put"): Operation(
        "Change the agent's notification policy or digest", "200", NotificationSettings, "Settings after the change.",
        body=NotificationRequest, refusals=(("404", "A named mailbox is not one of the agent's."),),
    ),
    ("/api/v1/contacts", "get"): Operation(
        "List the contacts on the agent's tickets", "200", ContactPage, "Contacts.", query=ContactQuery
    ),
}


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of /api/v1."""
    models = [(m, "serialization") for m in RESPONSES] + [(m, "validation") for m in REQUESTS]
    models += [(m, "serialization") for m in PAYLOADS.values()]
    _, definitions = models_json_schema(models, ref_template=REF)  # type: ignore[arg-type]
    paths: dict[str, dict[str, Any]] = {}
    for (path, method), operation in OPERATIONS.items():
        paths.setdefault(path, {})[method] = operation.document()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Wicket agent API",
            "version": "1",
            "description": "Tickets for agents: read, search, reply, add internal notes, change status; "
            "the agent's own notification settings, and the signed webhooks Wicket posts (`wicket webhooks add URL`).",
        },
        "servers": [{"url": "/"}],
        "security": [{"agentKey": []}],
        "paths": paths,
        "webhooks": webhook_operations(REF),
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {
                "agentKey": {"type": "http", "scheme": "bearer", "description": "`wicket agents key EMAIL` makes one."}
            },
        },
    }
