"""The files an outbound email carries: real MIME attachments, inline pictures, download links.

An agent's reply goes to the customer with the agent's files attached; pictures the agent
placed inline (`cid:`) travel in a multipart/related part beside the HTML under their own
Content-ID, so the customer's client shows them in the text. A notification carries the
customer's files to the agent the same way while together they fit
`notify_attachment_max_bytes`; above that it lists each with a signed, agent-scoped,
expiring download link (gateway/auth/downloads.py) instead. Links are made when the email
is rendered, like magic links, and the copy the outbox keeps has them replaced.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gateway.auth.downloads import download_token
from gateway.models import Attachment, loaded, utcnow
from gateway.settings import Settings
from gateway.storage import statements
from gateway.tickets.files import filesize

DOWNLOAD_PATH = "/agent/files/"
_CONTENT_ID = re.compile(r"[!#-;=?-~]{1,200}")  # printable ASCII without space, quotes, < or >
# Prepared: the outbox asks for every email it sends (bench/RESULTS.md, "Prepared statements").
_ATTACHMENTS = Attachment.__table__
_COLUMNS = tuple(column.key for column in _ATTACHMENTS.c)
_OF_MESSAGE = statements.prepare(
    "files.of_message",
    select(_ATTACHMENTS).where(_ATTACHMENTS.c.message_id == bindparam("message_id")).order_by(_ATTACHMENTS.c.id),
)


@dataclass(frozen=True, slots=True)
class Download:
    """A file listed in a notification with its link, as the templates show it."""

    filename: str
    size: str
    url: str
    token: str


@dataclass(frozen=True, slots=True)
class OutgoingFiles:
    """What one email carries: files to attach, files to link, the links' secrets."""

    attached: Sequence[Attachment] = ()
    downloads: Sequence[Download] = ()

    @property
    def inline_images(self) -> list[str]:
        """Content-IDs of the attached pictures the HTML part shows in place."""
        return [a.content_id for a in self.attached if _inline(a)]

    @property
    def secrets(self) -> list[str]:
        return [d.token for d in self.downloads]


NO_FILES = OutgoingFiles()


def _inline(attachment: Attachment) -> bool:
    """A picture shown in place; its Content-ID, from the sender's mail, must fit back into a header."""
    cid = attachment.content_id
    return bool(attachment.inline and cid and _CONTENT_ID.fullmatch(cid) and attachment.content_type.startswith("image/"))


def message_files(session: Session, message_id: int) -> list[Attachment]:
    """The message's files in the order they came, detached (an email is built after the commit)."""
    rows = statements.rows(_OF_MESSAGE, session.connection(), {"message_id": message_id})
    return [loaded(Attachment, dict(zip(_COLUMNS, row, strict=True))) for row in rows]


def files_for_agent(
    settings: Settings, files: Sequence[Attachment], *, agent_id: int, portal: str
) -> OutgoingFiles:
    """Attach the customer's files while they fit the limit, else link each for this agent."""
    if sum(f.size for f in files) <= settings.notify_attachment_max_bytes:
        return OutgoingFiles(attached=files)
    expires = utcnow() + timedelta(hours=settings.agent_download_ttl_hours)
    downloads = []
    for file in files:
        token = download_token(settings.keys[0], file.public_id, agent_id, expires)
        downloads.append(Download(file.filename, filesize(file.size), f"{portal}{DOWNLOAD_PATH}{token}", token))
    return OutgoingFiles(downloads=downloads)


def attach(email: EmailMessage, files: OutgoingFiles) -> None:
    """Add the files to a finished text-and-HTML email: inline pictures beside the HTML."""
    html = email.get_body(("html",)) if files.inline_images else None
    for file in files.attached:
        maintype, _, subtype = file.content_type.partition("/")
        if html is not None and _inline(file):
            html.add_related(
                file.data, maintype=maintype, subtype=subtype or "octet-stream",
                cid=f"<{file.content_id}>", filename=file.filename, disposition="inline",
            )  # fmt: skip
        else:
            email.add_attachment(
                file.data, maintype=maintype or "application", subtype=subtype or "octet-stream",
                filename=file.filename,
            )  # fmt: skip
