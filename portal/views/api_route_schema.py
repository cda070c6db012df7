"""The shapes of the agent API's routes: a route as the API shows it, and a request to add one.

An agent's request may only name an exact or plus address (ASCII, no +tag) and one of
their mailboxes; the checks that it is theirs are gateway/inbound/route_admin.py's. Like
every request model, these are strict JSON objects (`api_schema._Body`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from portal.views.api_schema import PUBLIC_ID, _Body


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
