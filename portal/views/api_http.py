"""What every agent API view shares: the key that says who asks, JSON in, JSON out, JSON errors.

A view wrapped in `api_view` is exempt from CSRF (a bearer key, not a cookie, carries the
request) and turns an `ApiFailure` raised anywhere inside it into `{"error": …, "status": …}`
with that status. `authenticate` answers 401 unless the request carries an active agent's
key (`Authorization: Bearer wk_…`) and gives the agent's id and mailboxes, the only
tickets the request may see. Queries and bodies are read through the pydantic models of
`api_schema`, so what the OpenAPI document promises is what the views accept.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from gateway.directory.agents import agent_for_api_key, mailbox_ids_of
from portal import keys
from portal.csrf import csrf_exempt
from portal.views.api_files import validation_errors

M = TypeVar("M", bound=BaseModel)
View = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiFailure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def response(self) -> web.Response:
        headers = {"WWW-Authenticate": 'Bearer realm="wicket"'} if self.status == 401 else None
        return web.json_response({"error": str(self), "status": self.status}, status=self.status, headers=headers)


def api_view(handler: View) -> View:
    """Bearer-key authenticated (so no CSRF token), with ApiFailure turned into JSON."""

    @functools.wraps(handler)
    async def view(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiFailure as failure:
            return failure.response()

    return csrf_exempt(view)


@dataclass(frozen=True, slots=True)
class Access:
    agent_id: int
    mailbox_ids: list[int]


async def authenticate(request: web.Request) -> Access:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():

        def find(session: Session) -> Access | None:
            agent = agent_for_api_key(session, key.strip())
            return None if agent is None else Access(agent.id, mailbox_ids_of(session, agent))

        access = await request.app[keys.DB].write(find)
        if access is not None:
            return access
    raise ApiFailure(401, "send a valid agent API key as 'Authorization: Bearer <key>'")


def read_query(model: type[M], request: web.Request) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as error:
        raise ApiFailure(400, validation_errors(error)) from None


async def read_body(model: type[M], request: web.Request) -> M:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as error:
        raise ApiFailure(400, validation_errors(error)) from None


def ok(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)


def next_offset(offset: int, limit: int, rows: Sequence[object]) -> int | None:
    """Where the next page starts; the query fetched one row more than a page to know."""
    return offset + limit if len(rows) > limit else None


def clean(text: str) -> str:
    """Text without NUL characters (no database column takes them) and outer whitespace."""
    return text.replace("\x00", "").strip()
