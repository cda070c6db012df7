"""`wicket replay`: feeding saved mail (.eml and Outlook .msg files, directories of them, mbox
files) through the real path.

Each message is stored through the same group-committing store the SMTP listener uses and
then processed by the same processor, so a replay behaves exactly like delivery, with one
difference unless `--send-mail` is given: nobody is mailed (no acknowledgement, no agent
notification), since saved mail names senders who never wrote to this installation.
Without an explicit recipient, the envelope recipients are the To/Cc/Delivered-To
addresses that are routable mailboxes; a message naming none is refused, as SMTP would
refuse it, with the command that fixes it. An Outlook .msg file is first turned into the
message it holds (`gateway.mail.outlook_mail`); one extract-msg cannot read is refused with
the reason. What became of each message is a `Replayed` record: printed as a summary, or
one JSON line each with `--json`. `replay_paths` is the whole replay, which the demo uses too.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from functools import partial
from pathlib import Path

import click
from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.cli.support import node_settings, run_async
from gateway.mail.outlook import UnreadableItem
from gateway.mail.outlook_mail import as_message
from gateway.models import InboundEmail, InboundStatus, Message, Ticket
from gateway.settings import Settings


def collect_messages(paths: list[Path]) -> Iterator[tuple[str, bytes]]:
    """(name, raw bytes) for every message under the given paths, in a stable order."""
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".eml", ".mbox", ".msg")):
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


@dataclass(frozen=True, slots=True)
class Replayed:
    """What became of one replayed message (one `--json` line)."""

    file: str
    outcome: str  # delivered, duplicate, ignored, bounced, failed or refused
    ticket: int | None = None
    message_id: str | None = None
    classification: str | None = None
    rule: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def refusal(candidates: list[str]) -> str:
    """Why a message was refused, with the command that fixes it."""
    if not candidates:
        return "no recipient in its To, Cc or Delivered-To headers: give one with --to ADDRESS"
    address = candidates[0].lower()
    return f"no mailbox for {address}: run `wicket mailbox add {address}`"


async def store_message(
    gateway: Gateway, raw: bytes, recipients: tuple[str, ...] | None, *, send_mail: bool
) -> int | str:
    """Store one message (an Outlook item as the message it holds): its InboundEmail id, or
    why it was refused."""
    try:
        raw = as_message(raw)
    except UnreadableItem as error:
        return f"not a readable Outlook .msg file ({error})"
    mail_from, from_headers = header_envelope(raw)
    candidates = list(recipients or from_headers)
    router, read = gateway.router, gateway.db.read
    routable = tuple([r for r in candidates if router.accepted(r) or await read(partial(router.accepts, address=r))])
    if not routable:
        return refusal(candidates)
    return await gateway.receive(raw, mail_from=mail_from, rcpt_tos=routable, source="replay", send_mail=send_mail)


async def outcomes(gateway: Gateway, stored: list[tuple[str, int]]) -> list[Replayed]:
    """The outcome of each stored message, read once processing has drained."""
    ids = [inbound_id for _, inbound_id in stored]

    def read(connection: Connection) -> dict[int, Replayed]:
        rows = connection.execute(
            select(
                InboundEmail.id, InboundEmail.status, InboundEmail.outcome, InboundEmail.last_error,
                InboundEmail.message_id, Ticket.ref, Message.classification, Message.thread_rule,
            )
            .outerjoin(Ticket, Ticket.id == InboundEmail.ticket_id)
            .outerjoin(Message, Message.inbound_email_id == InboundEmail.id)
            .where(InboundEmail.id.in_(ids))
            .order_by(InboundEmail.id, Message.id)
        )
        found: dict[int, Replayed] = {}
        for inbound_id, status, note, error, message_id, ref, kind, rule in rows:
            found.setdefault(inbound_id, Replayed(
                "", _outcome(status, note or ""), ref, message_id, kind, rule,
                error if status == InboundStatus.FAILED else None,
            ))
        return found

    found = await gateway.db.read(read)
    return [_named(found[inbound_id], name) for name, inbound_id in stored]


def _named(replayed: Replayed, name: str) -> Replayed:
    return Replayed(name, *list(asdict(replayed).values())[1:])


def _outcome(status: str, note: str) -> str:
    if status == InboundStatus.IGNORED:
        return "duplicate" if note.startswith("duplicate") else "ignored"
    return str(status)


async def requeue_failed(gateway: Gateway) -> list[tuple[str, int]]:
    """Give dead-lettered messages a fresh set of attempts; (name, id) of each."""

    def requeue(session: Session) -> list[int]:
        rows = session.execute(
            update(InboundEmail)
            .where(InboundEmail.status == InboundStatus.FAILED)
            .values(status=InboundStatus.PENDING, attempts=0, next_attempt_at=InboundEmail.received_at)
            .returning(InboundEmail.id)
        )
        return list(rows.scalars())

    return [(f"inbound #{inbound_id}", inbound_id) for inbound_id in await gateway.db.write(requeue)]


def summary(replayed: list[Replayed], *, send_mail: bool) -> list[str]:
    """The human-readable report: counts that add up to the total, then each problem."""
    counts: dict[str, int] = {}
    for item in replayed:
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    labels = {"delivered": "delivered", "duplicate": "duplicates", "ignored": "ignored (mail loops)",
              "bounced": "bounced", "failed": "failed", "refused": "refused"}
    parts = [f"{label} {counts.get(name, 0)}" for name, label in labels.items()
             if counts.get(name) or name in ("delivered", "refused")]
    tickets = sorted({item.ticket for item in replayed if item.ticket is not None})
    lines = [f"replayed {len(replayed)} messages: " + ", ".join(parts)]
    if tickets:
        lines.append("tickets: " + _refs(tickets))
    if not send_mail:
        lines.append("no mail was sent (--send-mail sends acknowledgements and notifications)")
    lines += [f"  {item.outcome}: {item.file}: {item.error}" for item in replayed if item.error]
    return lines


def _refs(refs: list[int]) -> str:
    """Ticket numbers with runs shortened: #1001-#1005, #1009."""
    runs: list[list[int]] = []
    for ref in refs:
        if runs and ref == runs[-1][-1] + 1:
            runs[-1].append(ref)
        else:
            runs.append([ref])
    return ", ".join(f"#{run[0]}" if len(run) == 1 else f"#{run[0]}-#{run[-1]}" for run in runs)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--to", "recipients", multiple=True, help="Envelope recipient (default: To/Cc headers).")
@click.option("--failed", is_flag=True, help="Retry dead-lettered messages.")
@click.option("--send-mail", is_flag=True, help="Send acknowledgements and notifications (default: mail nobody; webhooks still fire).")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per message: outcome, ticket, rule.")
@run_async
async def replay(paths: tuple[Path, ...], recipients: tuple[str, ...], failed: bool, send_mail: bool, as_json: bool) -> None:
    """Feed .eml files, directories and mbox files through the production path."""
    import json

    if not paths and not failed:
        raise click.UsageError("give PATH... or --failed")
    replayed = await replay_paths(node_settings(), list(paths), recipients, failed, send_mail)
    if as_json:
        for item in replayed:
            click.echo(json.dumps(item.as_json()))
    else:
        for line in summary(replayed, send_mail=send_mail):
            click.echo(line)
    if any(item.outcome in ("refused", "failed") for item in replayed):
        raise SystemExit(1)


async def replay_paths(
    settings: Settings, paths: list[Path], recipients: tuple[str, ...], failed: bool, send_mail: bool
) -> list[Replayed]:
    """Store every message under `paths` (and, with `failed`, the dead letters again), process them, say what became
    of each."""
    from rich.console import Console
    from rich.progress import Progress

    gateway = Gateway(settings)
    await gateway.start()
    try:
        stored = await requeue_failed(gateway) if failed else []
        refused: list[Replayed] = []
        messages = list(collect_messages(paths))
        with Progress(console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("storing", total=len(messages))
            for name, raw in messages:
                kept = await store_message(gateway, raw, recipients or None, send_mail=send_mail)
                if isinstance(kept, str):
                    refused.append(Replayed(name, "refused", error=kept))
                else:
                    stored.append((name, kept))
                progress.advance(task)
            progress.add_task("processing", total=None)
            await gateway.processor.drain()
        return await outcomes(gateway, stored) + refused
    finally:
        await gateway.stop()
        await gateway.db.dispose()
