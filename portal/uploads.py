"""Files a contact attaches to a reply or a new request: read from the form, then checked.

`read_uploads` takes the `attachments` fields of a submitted form and returns them as
`Upload`s, or raises `UploadRejected` with a sentence the form shows above the field. The
limits and the naming are the ones every door uses (`gateway.tickets.files`): an agent's
attachment is held to the same rules as a contact's upload.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp.web_request import FileField

from gateway.settings import Settings
from gateway.tickets.files import FileRejected, check_files, clean_filename, content_type_for
from portal.submissions import Upload

FIELD = "attachments"
UploadRejected = FileRejected


def accept_attribute(settings: Settings) -> str:
    """The `accept` attribute of the file input, so the picker offers the same types."""
    return ",".join(f".{ext}" for ext in settings.portal_attachment_extensions)


def read_uploads(fields: Iterable[object], settings: Settings, text_size: int = 0) -> list[Upload]:
    """The accepted files among the form `fields` (empty file inputs are skipped)."""
    uploads: list[Upload] = []
    for field in fields:
        if not isinstance(field, FileField) or not field.filename:
            continue
        name = clean_filename(field.filename)
        uploads.append(Upload(name, content_type_for(name), field.file.read()))
    check_files(uploads, settings, text_size)
    return uploads
