"""Files a contact attaches to a reply or a new request: what is accepted and how it is read.

`read_uploads` takes the `attachments` fields of a submitted form and returns them as
`Upload`s, or raises `UploadRejected` with a sentence the form shows above the field. A
file is accepted when its extension is in `portal_attachment_extensions`, it is not
empty and not larger than `portal_attachment_max_bytes`, there are at most
`portal_attachment_max_count` of them, and the message with all of them fits
`max_message_size`. The content type is taken from the extension, never from the browser;
names lose any path and control characters.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable

from aiohttp.web_request import FileField

from gateway.settings import Settings
from portal.formatting import filesize
from portal.submissions import Upload

FIELD = "attachments"
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069\"\\/:*?<>|]")
_TYPES = mimetypes.MimeTypes()  # the stdlib table only, the same on every host


class UploadRejected(ValueError):
    """A file the portal does not accept; the message says which and why."""


def clean_filename(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE_NAME.sub("_", base).strip(" .")
    return cleaned[-200:] or "attachment"


def extension(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name else ""


def content_type_for(name: str) -> str:
    guessed, _ = _TYPES.guess_type("file." + extension(name), strict=False)
    return guessed or "application/octet-stream"


def accept_attribute(settings: Settings) -> str:
    """The `accept` attribute of the file input, so the picker offers the same types."""
    return ",".join(f".{ext}" for ext in settings.portal_attachment_extensions)


def read_uploads(fields: Iterable[object], settings: Settings, text_size: int = 0) -> list[Upload]:
    """The accepted files among the form `fields` (empty file inputs are skipped)."""
    uploads: list[Upload] = []
    allowed = {ext.lower().lstrip(".") for ext in settings.portal_attachment_extensions}
    for field in fields:
        if not isinstance(field, FileField) or not field.filename:
            continue
        name = clean_filename(field.filename)
        data = field.file.read()
        if not data:
            raise UploadRejected(f"{name} is empty.")
        if extension(name) not in allowed:
            raise UploadRejected(f"{name}: files of this type cannot be attached. Try a PDF, an image or a ZIP file.")
        if len(data) > settings.portal_attachment_max_bytes:
            limit = filesize(settings.portal_attachment_max_bytes)
            raise UploadRejected(f"{name} is {filesize(len(data))}; each file may be at most {limit}.")
        uploads.append(Upload(name, content_type_for(name), data))
    if len(uploads) > settings.portal_attachment_max_count:
        raise UploadRejected(f"Attach at most {settings.portal_attachment_max_count} files.")
    encoded = text_size + sum(len(upload.data) * 4 // 3 + 1024 for upload in uploads)
    if encoded > settings.max_message_size:
        raise UploadRejected(
            f"Together the files are too large; keep them under {filesize(settings.max_message_size * 3 // 4)}."
        )
    return uploads
