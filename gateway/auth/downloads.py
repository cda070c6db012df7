"""Signed, agent-scoped, expiring links to a customer's file, for agent notifications.

A notification whose customer files are too large to attach lists each file with a link
`/agent/files/<token>`. The token names the attachment, the agent it was mailed to and
when it stops working, under an HMAC with a key id (keys rotate like every other key), so
nothing is stored: no column holds it, and the outbox keeps the notification with the
token replaced (gateway/outbound/drafts.py). A valid token is not access on its own: the
portal also checks that the agent is still active and still works the ticket's mailbox.
`read_download_token` returns None for anything else and logs one line saying why, never
the token; expiry is checked before the signature is computed and before any database
lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.settings import SecretKey

log = logging.getLogger(__name__)

# <attachment public id>.<agent id>.<expiry, unix seconds>.<key id>.<mac>
_TOKEN = re.compile(r"([a-z2-7]{16})\.([0-9]{1,18})\.([0-9]{1,12})\.([0-9a-f]{8})\.([A-Za-z0-9_-]{43})")
REDACTED = "[download link sent]"


@dataclass(frozen=True, slots=True)
class DownloadGrant:
    """What a verified token names: the attachment and the agent it was mailed to."""

    attachment_public_id: str
    agent_id: int


def _mac(key: SecretKey, attachment: str, agent_id: int, expires: int) -> str:
    message = f"agent-download|{attachment}|{agent_id}|{expires}".encode()
    return base64.urlsafe_b64encode(hmac.digest(key.secret, message, hashlib.sha256)).decode().rstrip("=")


def download_token(key: SecretKey, attachment_public_id: str, agent_id: int, expires_at: datetime) -> str:
    """A token for `agent_id` to fetch the attachment until `expires_at`."""
    expires = int(expires_at.timestamp())
    return f"{attachment_public_id}.{agent_id}.{expires}.{key.kid}.{_mac(key, attachment_public_id, agent_id, expires)}"


def read_download_token(keys: Sequence[SecretKey], token: str, now: datetime) -> DownloadGrant | None:
    """The grant a token carries, or None (logged, without the token) when it does not verify."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        log.info("download link refused: malformed")
        return None
    attachment, agent, expires, kid, mac = match.groups()
    if int(expires) <= now.astimezone(UTC).timestamp():
        log.info("download link refused: expired")
        return None
    key = next((k for k in keys if k.kid == kid), None)
    if key is None:
        log.info("download link refused: unknown key id")
        return None
    if not hmac.compare_digest(mac, _mac(key, attachment, int(agent), int(expires))):
        log.info("download link refused: bad signature")
        return None
    return DownloadGrant(attachment, int(agent))
