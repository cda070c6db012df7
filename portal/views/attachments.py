"""Attachment downloads, checked against the session like every other object.

`/tickets/{ticket}/attachments/{attachment}` answers only when the contact may see the
ticket and the attachment belongs to a message of its customer thread; otherwise 404,
so ids cannot be tried. Raster images are served inline (the ticket page shows them);
everything else as `application/octet-stream` with `Content-Disposition: attachment`, so
no uploaded HTML or SVG ever renders on the portal's origin. Responses carry a sandboxing
CSP, and downloads are audited (`attachment.downloaded`).
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from gateway.audit import record
from gateway.ticket_access import ticket_for_contact, visible_attachment
from portal import keys
from portal.sessions import audit_context, require_contact
from portal.thread import IMAGE_TYPES


def content_disposition(kind: str, filename: str) -> str:
    """`attachment; filename="…"; filename*=UTF-8''…` with an ASCII fallback name."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename) or "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def download(request: web.Request) -> web.Response:
    contact = await require_contact(request)
    async with request.app[keys.DB].write() as session:
        access = await ticket_for_contact(session, contact, request.match_info["public_id"])
        if access is None:
            raise web.HTTPNotFound()
        attachment = await visible_attachment(session, access.ticket, request.match_info["attachment_id"])
        if attachment is None:
            raise web.HTTPNotFound()
        image = attachment.content_type in IMAGE_TYPES
        if not image:
            detail = {"attachment": attachment.public_id, "shared": access.shared}
            record(
                session, "attachment.downloaded", contact=contact, ticket=access.ticket, detail=detail,
                **audit_context(request),
            )  # fmt: skip
    headers = {
        "Content-Disposition": content_disposition("inline" if image else "attachment", attachment.filename),
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=600" if image else "private, no-store",
    }
    content_type = attachment.content_type if image else "application/octet-stream"
    return web.Response(body=attachment.data, content_type=content_type, headers=headers)
