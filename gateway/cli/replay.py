"""Feeding saved mail (.eml files, directories of them, mbox files) through the real path.

Each message is stored through the same group-committing store the SMTP listener uses and
then processed by the same processor, so a replay behaves exactly like delivery. Without
an explicit recipient, the envelope recipients are the To/Cc/Delivered-To addresses that
are routable mailboxes; a message naming none is refused, as SMTP would refuse it.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path

from sqlalchemy import select, update

from gateway.cli.runtime import Gateway
from gateway.models import InboundEmail, InboundStatus, Message


def collect_messages(paths: list[Path]) -> Iterator[tuple[str, bytes]]:
    """(name, raw bytes) for every message under the given paths, in a stable order."""
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".eml", ".mbox")):
                yield from collect_messages([child])
        elif path.suffix == ".mbox" or _looks_like_mbox(path):
            box = mailbox.mbox(path, create=False)
            for index, key in enumerate(box.keys()):
                yield f"{path.name}#{index + 1}", box.get_bytes(key)
        else:
            yield path.name, path.read_bytes()


def _looks_like_mbox(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def header_envelope(raw: bytes) -> tuple[str, list[str]]:
    """The envelope a saved message most likely had: Return-Path (else From), and recipients."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    except Exception:  # headers too broken to read: no envelope can be guessed
        return "", []
    values = [str(v) for name in ("Delivered-To", "To", "Cc") for v in headers.get_all(name, [])]
    recipients = [address for _, address in getaddresses(values) if "@" in address]
    return_path = headers.get("Return-Path")
    if return_path is not None:
        return str(return_path).strip().strip("<>").strip(), recipients
    senders = getaddresses([str(v) for v in headers.get_all("From", [])])
    return (senders[0][1] if senders else ""), recipients


@dataclass
class ReplaySummary:
    accepted: int = 0
    refused: list[str] = field(default_factory=list)
    inbound_ids: list[int] = field(default_factory=list)
    delivered: int = 0
    duplicates: int = 0
    automatic: int = 0
    failed: int = 0


async def store_message(gateway: Gateway, raw: bytes, recipients: tuple[str, ...] | None) -> int | None:
    """Store one message; None when no recipient is routable."""
    mail_from, from_headers = header_envelope(raw)
    candidates = recipients or tuple(from_headers)
    routable = tuple([r for r in candidates if await gateway.router.resolve(r) is not None])
    if not routable:
        return None
    return await gateway.receive(raw, mail_from=mail_from, rcpt_tos=routable, source="replay")


async def summarise(gateway: Gateway, summary: ReplaySummary) -> ReplaySummary:
    ids = summary.inbound_ids
    async with gateway.db.sessions() as session:
        statuses = (await session.execute(select(InboundEmail.status).where(InboundEmail.id.in_(ids)))).scalars()
        for status in statuses:
            summary.delivered += status == InboundStatus.DELIVERED
            summary.duplicates += status == InboundStatus.IGNORED
            summary.failed += status == InboundStatus.FAILED
        kinds = await session.execute(
            select(Message.classification).where(Message.inbound_email_id.in_(ids))
        )
        summary.automatic = sum(1 for kind in kinds.scalars() if kind != "normal")
    return summary


async def requeue_failed(gateway: Gateway) -> list[int]:
    """Give dead-lettered messages a fresh set of attempts."""
    async with gateway.db.sessions.begin() as session:
        rows = await session.execute(
            update(InboundEmail)
            .where(InboundEmail.status == InboundStatus.FAILED)
            .values(status=InboundStatus.PENDING, attempts=0, next_attempt_at=InboundEmail.received_at)
            .returning(InboundEmail.id)
        )
        return list(rows.scalars())
