"""Files in the agent API: listed on each message, served to agents, sent with a reply.

Each message of `GET /api/v1/tickets/{id}` lists its files (name, type, size, sha256, the
URL that serves them). A reply may be a multipart form (`text`, `status`, any number of
`attachments` files) instead of JSON; its files pass the limits every door uses
(`gateway.tickets.files.check_files`). `read_reply` returns the request and the files, or
raises `FormRefused` with what to fix.
"""

from __future__ import annotations

import json
from collections import defaultdict

from aiohttp import web
from aiohttp.web_request import FileField
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import Attachment, Message, Ticket
from gateway.settings import Settings
from gateway.tickets.files import FileRejected, TeamFile, check_files, team_file
from portal.views.api_schema import AttachmentOut, ReplyRequest

FILES_FIELD = "attachments"


class FormRefused(ValueError):
    """A reply the API does not take; the message says why."""


def validation_errors(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()[:5])


def attachments_by_message(session: Session, ticket: Ticket) -> dict[int, list[AttachmentOut]]:
    """The files of the ticket's messages (without their bytes), by message id."""
    rows = session.execute(
        select(
            Attachment.message_id, Attachment.public_id, Attachment.filename, Attachment.content_type,
            Attachment.size, Attachment.sha256, Attachment.inline,
        )
        .join(Message, Message.id == Attachment.message_id)
        .where(Message.ticket_id == ticket.id)
        .order_by(Attachment.id)
    )  # fmt: skip
    found: dict[int, list[AttachmentOut]] = defaultdict(list)
    for message_id, public_id, filename, content_type, size, sha256, inline in rows:
        url = f"/api/v1/tickets/{ticket.public_id}/attachments/{public_id}"
        found[message_id].append(
            AttachmentOut(id=public_id, filename=filename, content_type=content_type, size=size, sha256=sha256,
                          inline=inline, url=url)
        )  # fmt: skip
    return found


async def read_reply(request: web.Request, settings: Settings) -> tuple[ReplyRequest, tuple[TeamFile, ...]]:
    """A reply as JSON, or as a multipart form with files."""
    try:
        if request.content_type != "multipart/form-data":
            return ReplyRequest.model_validate_json(await request.read()), ()
        form = await request.post()
        if unknown := set(form) - {"text", "status", FILES_FIELD}:
            raise FormRefused(f"unknown form fields: {', '.join(sorted(unknown))[:200]}")
        fields = {name: form.getone(name) for name in ("text", "status") if name in form}
        if not all(isinstance(value, str) for value in fields.values()):
            raise FormRefused("text and status are plain form fields, not files")
        reply = ReplyRequest.model_validate_json(json.dumps(fields))
        uploads = [f for f in form.getall(FILES_FIELD, []) if isinstance(f, FileField) and f.filename]
        if len(uploads) != len(form.getall(FILES_FIELD, [])):
            raise FormRefused(f"{FILES_FIELD} holds files only")
        files = tuple(team_file(f.filename, f.file.read()) for f in uploads)
        check_files(files, settings, len(reply.text))
    except ValidationError as error:
        raise FormRefused(validation_errors(error)) from None
    except FileRejected as error:
        raise FormRefused(str(error)) from None
    return reply, files
