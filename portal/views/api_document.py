"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json and built from the API's models.

`OPERATIONS` is the table of contents: each path and method with its summary, its answer
and the refusals it may give (401 always; 400 and 413 where there is a query or body; 404
on a ticket or route of another mailbox). The schemas are the pydantic models the views
validate and serialise with (`api_schema`, `api_route_schema`) and the webhook payloads
(`webhook_schema`), so the document cannot promise what the views do not do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.models import TicketStatus
from portal.views.api_route_schema import HeaderCondition, RouteOut, RoutePage, RouteRequest
from portal.views.api_schema import (
    PUBLIC_ID,
    REF,
    ApiError,
    AttachmentOut,
    ContactPage,
    ContactQuery,
    NoteRequest,
    NotificationRequest,
    NotificationSettings,
    ReplyRequest,
    RequesterRequest,
    StatusRequest,
    TicketDetail,
    TicketMessage,
    TicketPage,
    TicketQuery,
    TicketSummary,
)
from portal.views.webhook_schema import PAYLOADS, webhook_operations

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
