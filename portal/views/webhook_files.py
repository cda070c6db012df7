"""Attachments too large to inline in a webhook, fetched by the signed link the webhook carried.

`/webhooks/file?message=…&part=…&expires=…&signature=…` answers only for a link Wicket
signed (gateway/outbound/webhooks/files.py) that has not expired; anything else is the
same 404, so nothing can be tried. The file comes from the stored inbound message, parsed
again, always as a download (`application/octet-stream`, a sandboxing CSP), never
rendered on the portal's origin. No session is involved: the link is the credential, for
one file, for `webhook_attachment_url_hours`.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import Connection, select

from gateway.mail.parse import parse_email
from gateway.models import InboundEmail, utcnow
from gateway.outbound.webhooks.files import PATH, verify_link
from portal import keys
from portal.views.attachments import DOWNLOAD_HEADERS, content_disposition


async def webhook_file(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    query = request.query
    try:
        inbound_id, index, expires = int(query["message"]), int(query["part"]), int(query["expires"])
        signature = query["signature"]
    except (KeyError, ValueError):
        raise web.HTTPNotFound() from None
    if not verify_link(settings, inbound_id, index, expires, signature, utcnow()):
        raise web.HTTPNotFound()

    def raw_of(connection: Connection) -> bytes | None:
        return connection.scalar(select(InboundEmail.raw).where(InboundEmail.id == inbound_id))

    raw = await request.app[keys.DB].read(raw_of)
    if raw is None:
        raise web.HTTPNotFound()
    attachments = (await asyncio.to_thread(parse_email, raw)).attachments
    if not 0 <= index < len(attachments):
        raise web.HTTPNotFound()
    attachment = attachments[index]
    headers = {**DOWNLOAD_HEADERS, "Content-Disposition": content_disposition("attachment", attachment.filename)}
    return web.Response(body=attachment.data, content_type="application/octet-stream", headers=headers)


def add_webhook_file_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PATH, webhook_file, name="webhook_file")
