"""Signed, expiring download links for attachments too large to inline in a webhook.

A link names the stored inbound message and the attachment's position in it, with an
expiry time and an HMAC over all three under the server's newest key (any configured key
verifies, so keys rotate). It grants that one file until it expires and nothing else; the
portal serves it (portal/views/webhook_files.py) after `verify_link` says yes.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from urllib.parse import urlencode

from gateway.settings import Settings

PATH = "/webhooks/file"


def _signature(secret: bytes, inbound_id: int, index: int, expires: int) -> str:
    message = f"wicket-webhook-file:{inbound_id}:{index}:{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def attachment_url(settings: Settings, inbound_id: int, index: int, now: datetime) -> tuple[str, datetime]:
    """The download URL of one attachment and when it stops working."""
    expires_at = now + timedelta(hours=settings.webhook_attachment_url_hours)
    expires = int(expires_at.timestamp())
    signature = _signature(settings.keys[0].secret, inbound_id, index, expires)
    query = urlencode({"message": inbound_id, "part": index, "expires": expires, "signature": signature})
    return f"{settings.public_url}{PATH}?{query}", expires_at


def verify_link(settings: Settings, inbound_id: int, index: int, expires: int, signature: str, now: datetime) -> bool:
    """Whether a download link is one Wicket signed and has not expired."""
    if expires < now.timestamp():
        return False
    return any(
        hmac.compare_digest(_signature(key.secret, inbound_id, index, expires), signature) for key in settings.keys
    )
