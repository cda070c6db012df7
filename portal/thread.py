"""A ticket's thread as the ticket page shows it: who wrote, when, the safe body, the files.

`present_thread` turns the customer-visible messages (see `gateway.ticket_access`) into
`ThreadMessage`s. HTML mail goes through `portal.sanitize` with its `cid:` images pointing
at this ticket's scoped attachment URLs and remote images blocked unless the contact
chose "show pictures" for that message; plain text (and every agent reply, and HTML that
sanitizes to nothing) is escaped with its quoted history split off. Attachments shown inline in the HTML are not listed again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup

from gateway.models import Attachment, AuthorType, Contact, Message
from portal.sanitize import clean_mail_html, text_to_html

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
AttachmentUrl = Callable[[Attachment], str]


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


def author_of(message: Message, viewer: Contact, team_name: str) -> str:
    if message.author_type != AuthorType.CUSTOMER:
        name = message.from_name or "Support"
        return f"{name} · {team_name}"
    if message.author_contact_id == viewer.id:
        return "You"
    return message.from_name or message.from_email or "Unknown sender"


def _files(message: Message, attachment_url: AttachmentUrl, shown_inline: set[str]) -> list[FileLink]:
    return [
        FileLink(a.filename, a.size, attachment_url(a), a.content_type in IMAGE_TYPES)
        for a in message.attachments
        if not (a.content_id and a.content_id.lower() in shown_inline)
    ]


def present_message(
    message: Message, viewer: Contact, *, team_name: str, attachment_url: AttachmentUrl, show_images: bool
) -> ThreadMessage:
    html = message.body_html if message.author_type == AuthorType.CUSTOMER else None
    inline = {a.content_id: attachment_url(a) for a in message.attachments if a.content_id}
    clean = clean_mail_html(html, inline_images=inline, show_remote_images=show_images) if html else None
    if clean is not None and clean.body.strip():
        body, quoted, remote, used = clean.body, clean.quoted, clean.remote_images, clean.inline_used
    else:  # plain text, every agent reply, and HTML with nothing left to show
        has_reply = bool(message.reply_text.strip())
        reply, quoted_text = (message.reply_text, message.quoted_text) if has_reply else (message.body_text, "")
        body, quoted, remote, used = text_to_html(reply.strip("\n")), text_to_html(quoted_text.strip("\n")), 0, set()
    return ThreadMessage(
        public_id=message.public_id,
        author=author_of(message, viewer, team_name),
        initial=(message.from_name or message.from_email or "?")[:1].upper(),
        from_team=message.author_type != AuthorType.CUSTOMER,
        by_viewer=message.author_contact_id == viewer.id,
        sent_at=message.created_at,
        body=body,
        quoted=quoted,
        remote_images=remote,
        images_shown=show_images,
        files=_files(message, attachment_url, used),
        is_html=clean is not None and bool(clean.body.strip()),
    )


def present_thread(
    messages: list[Message],
    viewer: Contact,
    *,
    team_name: str,
    attachment_url: AttachmentUrl,
    images_for: str | None = None,
) -> list[ThreadMessage]:
    """The thread for `viewer`; `images_for` is the message whose remote images may load."""
    return [
        present_message(
            message, viewer, team_name=team_name, attachment_url=attachment_url,
            show_images=message.public_id == images_for,
        )
        for message in messages
    ]  # fmt: skip
