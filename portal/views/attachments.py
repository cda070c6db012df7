"""Attachment and original-message downloads, checked against the session like every other object.

`/tickets/{ticket}/attachments/{attachment}` answers only when the contact may see the
ticket and the attachment belongs to a message of its customer thread; otherwise 404,
so ids cannot be tried. Raster images are served inline (the ticket page shows them);
everything else as `application/octet-stream` with `Content-Disposition: attachment`, so
no uploaded HTML or SVG ever renders on the portal's origin. Responses carry a sandboxing
CSP, and downloads are audited (`attachment.downloaded`).
`/tickets/{ticket}/messages/{message}/original` is the same for a message too large to
show on the page, under the same rule: a customer's HTML as sent (never rendered here),
otherwise the message's full text (`message.original_downloaded`).
`/agent/files/{download}` is the signed, agent-scoped, expiring link a notification lists
for a file too large to attach (gateway/auth/downloads.py): it answers while the link
verifies and the agent it names is active and works the ticket's mailbox, always as a
download, and is audited (`attachment.downloaded_by_agent`); anything else is 404.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from gateway.auth.audit import record
from gateway.auth.downloads import read_download_token
from gateway.models import Attachment, AuthorType, Message, utcnow
from gateway.tickets.access import AgentFile, customer_visible, file_for_agent, ticket_for_contact, visible_attachment
from portal import keys
from portal.sessions import audit_context, require_contact
from portal.thread import IMAGE_TYPES

DOWNLOAD_HEADERS = {"Content-Security-Policy": "default-src 'none'; sandbox", "Cache-Control": "private, no-store"}


def content_disposition(kind: str, filename: str) -> str:
    """`attachment; filename="…"; filename*=UTF-8''…` with an ASCII fallback name."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename) or "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def download(request: web.Request) -> web.Response:
    contact = await require_contact(request)

    def find(session: Session) -> Attachment:
        access = ticket_for_contact(session, contact, request.match_info["public_id"])
        if access is None:
            raise web.HTTPNotFound()
        attachment = visible_attachment(session, access.ticket, request.match_info["attachment_id"])
        if attachment is None:
            raise web.HTTPNotFound()
        if attachment.content_type not in IMAGE_TYPES:
            detail = {"attachment": attachment.public_id, "shared": access.shared}
            record(
                session, "attachment.downloaded", contact=contact, ticket=access.ticket, detail=detail,
                **audit_context(request),
            )  # fmt: skip
        return attachment

    attachment = await request.app[keys.DB].write(find)
    image = attachment.content_type in IMAGE_TYPES
    headers = {
        "Content-Disposition": content_disposition("inline" if image else "attachment", attachment.filename),
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=600" if image else "private, no-store",
    }
    content_type = attachment.content_type if image else "application/octet-stream"
    return web.Response(body=attachment.data, content_type=content_type, headers=headers)


async def original(request: web.Request) -> web.Response:
    """GET a message of the customer thread as it was sent: its HTML, or else its text."""
    contact = await require_contact(request)

    def find(session: Session) -> Message:
        access = ticket_for_contact(session, contact, request.match_info["public_id"])
        if access is None:
            raise web.HTTPNotFound()
        message = session.scalar(
            select(Message)
            .where(
                Message.public_id == request.match_info["message_id"],
                Message.ticket_id == access.ticket.id,
                customer_visible(),
            )
            .options(undefer(Message.body_html))
        )
        if message is None:
            raise web.HTTPNotFound()
        detail = {"message": message.public_id, "shared": access.shared}
        record(
            session, "message.original_downloaded", contact=contact, ticket=access.ticket, detail=detail,
            **audit_context(request),
        )  # fmt: skip
        return message

    message = await request.app[keys.DB].write(find)
    html = message.body_html if message.author_type == AuthorType.CUSTOMER else None
    content, extension = (html, "html") if html is not None else (message.body_text, "txt")
    headers = {**DOWNLOAD_HEADERS, "Content-Disposition": content_disposition("attachment", f"message.{extension}")}
    body = await asyncio.to_thread(content.encode)  # megabytes: not on the event loop
    return web.Response(body=body, content_type="application/octet-stream", headers=headers)


def file_download(file: AgentFile) -> web.Response:
    """An agent's copy of a file: always a download, never rendered on the portal's origin."""
    headers = {**DOWNLOAD_HEADERS, "Content-Disposition": content_disposition("attachment", file.filename)}
    return web.Response(body=file.data, content_type="application/octet-stream", headers=headers)


async def agent_download(request: web.Request) -> web.Response:
    """GET a customer's file through the signed link in an agent's notification."""
    db = request.app[keys.DB]
    grant = read_download_token(request.app[keys.SETTINGS].keys, request.match_info["download"], utcnow())
    if grant is None:
        raise web.HTTPNotFound()
    file = await db.read(lambda rows: file_for_agent(rows, grant.agent_id, grant.attachment_public_id), large=True)
    if file is None:
        raise web.HTTPNotFound()
    detail = {"attachment": file.attachment_public_id, "agent": grant.agent_id}
    await db.write(lambda session: record(
        session, "attachment.downloaded_by_agent", ticket_id=file.ticket_id, detail=detail, **audit_context(request)
    ))  # fmt: skip
    return file_download(file)
