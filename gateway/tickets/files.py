"""Files people put on a ticket by hand: what is accepted, how they are named and stored.

A contact's portal upload, an agent's attachment (by email, `wicket reply --attach`, the
agent API) all pass `check_files`, so one set of limits holds at every door: an extension
in `portal_attachment_extensions`, not empty, at most `portal_attachment_max_bytes` each,
at most `portal_attachment_max_count` of them, and all of them with the text fitting
`max_message_size` once base64-encoded. The content type comes from the extension, never
from the sender; names lose any path and control characters (`clean_filename`). An
agent's inline image (a `cid:` picture in their mail) keeps its Content-ID, so the copy
sent to the customer shows it where the agent put it. `store_files` writes them as the
message's attachment rows.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import insert
from sqlalchemy.orm import Session

from gateway.models import Attachment
from gateway.settings import Settings

_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069\"\\/:*?<>|]")
_TYPES = mimetypes.MimeTypes()  # the stdlib table only, the same on every host


class FileRejected(ValueError):
    """A file Wicket does not accept; the message says which and why."""


class NamedFile(Protocol):
    @property
    def filename(self) -> str: ...

    @property
    def data(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class TeamFile:
    """A file an agent attaches to a reply; `content_id` is set for an inline image."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False


def filesize(size: int) -> str:
    """`1.2 MB`, as people read sizes."""
    if size < 1024:
        return f"{size} bytes"
    value, units = size / 1024, ["KB", "MB", "GB"]
    while value >= 1024 and len(units) > 1:
        value, units = value / 1024, units[1:]
    return f"{value:.0f} {units[0]}" if value >= 10 else f"{value:.1f} {units[0]}"


def clean_filename(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE_NAME.sub("_", base).strip(" .")
    return cleaned[-200:] or "attachment"


def extension(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name else ""


def content_type_for(name: str) -> str:
    guessed, _ = _TYPES.guess_type("file." + extension(name), strict=False)
    return guessed or "application/octet-stream"


def team_file(filename: str, data: bytes, content_id: str | None = None, inline: bool = False) -> TeamFile:
    """A file under a clean name, typed by its extension."""
    name = clean_filename(filename)
    return TeamFile(name, content_type_for(name), data, content_id, inline)


def check_files(files: Sequence[NamedFile], settings: Settings, text_size: int = 0) -> None:
    """Raise FileRejected, naming the file and the limit, unless every file may be attached."""
    allowed = {ext.lower().lstrip(".") for ext in settings.portal_attachment_extensions}
    for file in files:
        if not file.data:
            raise FileRejected(f"{file.filename} is empty.")
        if extension(file.filename) not in allowed:
            raise FileRejected(
                f"{file.filename}: files of this type cannot be attached. Try a PDF, an image or a ZIP file."
            )
        if len(file.data) > settings.portal_attachment_max_bytes:
            limit = filesize(settings.portal_attachment_max_bytes)
            raise FileRejected(f"{file.filename} is {filesize(len(file.data))}; each file may be at most {limit}.")
    if len(files) > settings.portal_attachment_max_count:
        raise FileRejected(f"Attach at most {settings.portal_attachment_max_count} files.")
    encoded = text_size + sum(len(file.data) * 4 // 3 + 1024 for file in files)
    if encoded > settings.max_message_size:
        raise FileRejected(
            f"Together the files are too large; keep them under {filesize(settings.max_message_size * 3 // 4)}."
        )


def store_files(session: Session, message_id: int, files: Sequence[TeamFile]) -> None:
    """The files as attachment rows of the message."""
    if not files:
        return
    rows = [
        {
            "message_id": message_id,
            "filename": f.filename,
            "content_type": f.content_type,
            "size": len(f.data),
            "sha256": hashlib.sha256(f.data).hexdigest(),
            "content_id": f.content_id,
            "inline": f.inline,
            "data": f.data,
        }
        for f in files
    ]
    session.connection().execute(insert(Attachment.__table__), rows)
