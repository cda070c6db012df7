"""A ticket's thread as the ticket page shows it: who wrote, when, the safe body, the files.

`present_thread` turns the customer-visible messages (see `gateway.tickets.access`) into
`ThreadMessage`s. Customer HTML is shown from the sanitized copy stored when the mail was
processed, through `portal.sanitize.present_html`, with its `cid:` images pointing at
this ticket's scoped attachment URLs and remote images blocked unless the contact chose
"show pictures" for that message; plain text (and every agent reply, and HTML with
nothing left to show) is escaped with its quoted history split off, an agent's inline
pictures shown below their text. HTML that was too
large to keep for display, and text longer than the display limit (cut there), come with
a link to download the original. Attachments shown inline in the HTML are not listed
again. `prepare_stored_html` sanitizes, once, customer messages stored before HTML was
sanitized at ingest, off the event loop, and keeps the result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.i18n import N_
from gateway.mail.parse.display import DisplayHtml, display_html
from gateway.models import Attachment, AuthorType, Contact, Message
from gateway.storage.database import Database
from portal.sanitize import CleanMail, present_html, text_to_html

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
AttachmentUrl = Callable[[Attachment], str]
MessageUrl = Callable[[Message], str]


@dataclass(frozen=True, slots=True)
class FileLink:
    filename: str
    size: int
    url: str
    is_image: bool


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    public_id: str
    author: str
    initial: str
    from_team: bool
    by_viewer: bool
    sent_at: datetime
    body: Markup
    quoted: Markup
    remote_images: int
    images_shown: bool
    files: list[FileLink]
    is_html: bool
    original_url: str | None  # set when the message is too large to show whole


def author_of(message: Message, viewer: Contact, team_name: str) -> str:
    if message.author_type != AuthorType.CUSTOMER:
        name = message.from_name or "Support"
        return f"{name} · {team_name}"
    if message.author_contact_id == viewer.id:
        return N_("You")  # the template translates it
    return message.from_name or message.from_email or N_("Unknown sender")


def _files(message: Message, attachment_url: AttachmentUrl, shown_inline: set[str]) -> list[FileLink]:
    return [
        FileLink(a.filename, a.size, attachment_url(a), a.content_type in IMAGE_TYPES)
        for a in message.attachments
        if not (a.content_id and a.content_id.lower() in shown_inline)
    ]


def _with_inline_pictures(body: Markup, message: Message, attachment_url: AttachmentUrl) -> tuple[Markup, set[str]]:
    """A team message's text followed by the pictures its author placed inline (cid:)."""
    pictures = [a for a in message.attachments if a.inline and a.content_id and a.content_type in IMAGE_TYPES]
    if not pictures:
        return body, set()
    images = Markup("").join(
        Markup('<p><img class="inline-image" src="{}" alt="{}"></p>').format(attachment_url(a), a.filename)
        for a in pictures
    )
    return body + images, {a.content_id.lower() for a in pictures if a.content_id}


def _cut(reply: str, quoted: str, limit: int) -> tuple[str, str, bool]:
    """The text to show, at most `limit` characters in all, and whether it was cut."""
    if len(reply) + len(quoted) <= limit:
        return reply, quoted, False
    return reply[:limit], quoted[: max(0, limit - len(reply))], True


def present_message(
    message: Message,
    viewer: Contact,
    *,
    team_name: str,
    attachment_url: AttachmentUrl,
    original_url: MessageUrl,
    show_images: bool,
    max_text: int,
) -> ThreadMessage:
    customer = message.author_type == AuthorType.CUSTOMER
    clean: CleanMail | None = None
    if customer and message.display_html:
        inline = {a.content_id: attachment_url(a) for a in message.attachments if a.content_id}
        clean = present_html(
            message.display_html, message.display_quoted_html, inline_images=inline, show_remote_images=show_images
        )
    cut = False
    if clean is not None:
        body, quoted, remote, used = clean.body, clean.quoted, clean.remote_images, clean.inline_used
    else:  # plain text, every agent reply, and HTML with nothing left to show or too large
        has_reply = bool(message.reply_text.strip())
        reply, quoted_text = (message.reply_text, message.quoted_text) if has_reply else (message.body_text, "")
        reply, quoted_text, cut = _cut(reply.strip("\n"), quoted_text.strip("\n"), max_text)
        body, quoted, remote, used = text_to_html(reply), text_to_html(quoted_text), 0, set()
        if not customer:
            body, used = _with_inline_pictures(body, message, attachment_url)
    too_large = cut or (customer and message.html_too_large)
    return ThreadMessage(
        public_id=message.public_id,
        author=author_of(message, viewer, team_name),
        initial=(message.from_name or message.from_email or "?")[:1].upper(),
        from_team=not customer,
        by_viewer=message.author_contact_id == viewer.id,
        sent_at=message.created_at,
        body=body,
        quoted=quoted,
        remote_images=remote,
        images_shown=show_images,
        files=_files(message, attachment_url, used),
        is_html=clean is not None,
        original_url=original_url(message) if too_large else None,
    )


def present_thread(
    messages: list[Message],
    viewer: Contact,
    *,
    team_name: str,
    attachment_url: AttachmentUrl,
    original_url: MessageUrl,
    max_text: int,
    images_for: str | None = None,
) -> list[ThreadMessage]:
    """The thread for `viewer`; `images_for` is the message whose remote images may load."""
    return [
        present_message(
            message, viewer, team_name=team_name, attachment_url=attachment_url, original_url=original_url,
            show_images=message.public_id == images_for, max_text=max_text,
        )
        for message in messages
    ]  # fmt: skip


async def prepare_stored_html(db: Database, messages: list[Message], max_bytes: int) -> None:
    """Sanitize the HTML of customer messages stored before ingest did it, and keep it.

    The sanitizing runs in a thread (nh3 releases the event loop's lock while it works),
    and the HTML as sent is read only for these rows; `messages` get the result too.
    """
    waiting = {m.id: m for m in messages if m.author_type == AuthorType.CUSTOMER and m.display_html is None}
    if not waiting:
        return
    stored = select(Message.id, Message.body_html).where(Message.id.in_(waiting))
    rows = await db.read(lambda connection: connection.execute(stored).all(), large=True)

    def sanitize() -> dict[int, DisplayHtml]:
        return {message_id: display_html(html, max_bytes) for message_id, html in rows}

    prepared = await asyncio.to_thread(sanitize)

    def keep(session: Session) -> None:
        for message_id, shown in prepared.items():
            session.execute(
                update(Message)
                .where(Message.id == message_id, Message.display_html.is_(None))
                .values(display_html=shown.body, display_quoted_html=shown.quoted, html_too_large=shown.too_large)
            )

    await db.write(keep)
    for message_id, shown in prepared.items():
        waiting[message_id].display = shown
