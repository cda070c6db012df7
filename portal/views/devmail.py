"""The dev mail viewer: `/_dev/mail` shows what the maildir sender delivered, links clickable.

With `make run` outbound mail goes to `var/maildir` instead of a relay. This view lists
those messages newest first, with the magic links each one carries, and shows one message
with its headers and its text with every URL made clickable, so a newcomer can follow a
reply link into the portal without a mail client. Its routes exist only when
`settings.dev` is true.
"""

from __future__ import annotations

import asyncio
import mailbox
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import cast

from aiohttp import web
from markupsafe import Markup, escape

from portal import keys
from portal.templating import render

_URL = re.compile(r"https?://[^\s<>\"']+")
SHOWN_HEADERS = ("From", "To", "Delivered-To", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To",
                 "Auto-Submitted", "DKIM-Signature")


@dataclass(frozen=True, slots=True)
class DevMail:
    key: str
    delivered_at: float
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if isinstance(part, EmailMessage) else ""

    @property
    def links(self) -> list[str]:
        return [url for url in _URL.findall(self.text) if "/l/" in url]


def _read(path: Path) -> list[DevMail]:
    if not path.is_dir():
        return []
    box = mailbox.Maildir(path, create=False)
    mails = []
    for key in box.iterkeys():
        raw = box.get_bytes(key)
        delivered = box.get_message(key).get_date()
        mails.append(DevMail(key, delivered, cast(EmailMessage, message_from_bytes(raw, policy=policy.default))))
    return sorted(mails, key=lambda m: m.delivered_at, reverse=True)


def linkify(text: str) -> Markup:
    return Markup(_URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', str(escape(text))))


async def mail_list(request: web.Request) -> web.Response:
    mails = await asyncio.to_thread(_read, request.app[keys.SETTINGS].maildir_dir)
    return await render(request, "dev_mail.html", {"mails": mails, "title": "Sent mail"})


async def mail_message(request: web.Request) -> web.Response:
    mails = await asyncio.to_thread(_read, request.app[keys.SETTINGS].maildir_dir)
    mail = next((m for m in mails if m.key == request.match_info["key"]), None)
    if mail is None:
        raise web.HTTPNotFound()
    headers = [(name, mail.message[name]) for name in SHOWN_HEADERS if mail.message[name]]
    context = {"mail": mail, "headers": headers, "body": linkify(mail.text), "title": mail.message["Subject"]}
    return await render(request, "dev_mail_message.html", context)


def add_devmail_routes(router: web.UrlDispatcher) -> None:
    """The dev mail viewer; only added when settings.dev is true."""
    router.add_get("/_dev/mail", mail_list, name="dev_mail")
    router.add_get("/_dev/mail/{key}", mail_message, name="dev_mail_message")
