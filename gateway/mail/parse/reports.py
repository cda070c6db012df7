"""Recognising delivery reports and bounces, and reading what they say went wrong.

A message carrying `message/delivery-status` parts is an RFC 3464 report: its recipients,
the failed (or first) recipient's status code and action, and the bounced message's id
come from those field groups and the returned message or headers. A message without them
still counts as a bounce when its subject reads like a non-delivery notice and it comes
from a mail system's own address (MAILER-DAEMON, postmaster, Exchange) or with a null
reverse path; then the human-written text (Exchange NDRs, qmail, exim) is searched for a
status code, the failed addresses, the original Message-ID and hints of a transient
failure. The predicates `is_bounce_subject`, `is_mailer_daemon` and
`has_empty_return_path` are public because classification uses them too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from gateway.mail.parse.bodies import _Parts
from gateway.mail.parse.headers import Headers, normalize_message_id
from gateway.mail.addresses import Address

_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)")
_BOUNCE_SUBJECT = re.compile(
    r"\s*(?:undeliverable|undelivered mail|undeliverable mail|delivery status notification"
    r"|mail delivery failed|mail delivery failure|delivery failure|returned mail|failure notice"
    r"|non[- ]?delivery|unzustellbar|nicht zustellbar|non remis|delivery has failed)",
    re.I,
)
_DAEMONS = frozenset({"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster"})
_QUOTED_MESSAGE_ID = re.compile(r"^[ \t>]*Message-ID:[ \t]*(<[^>\r\n]+>|\S+)", re.I | re.M)
_LONE_ADDRESS = re.compile(r"^[ \t]*<?([^\s<>@:;,]+@[^\s<>@:;,]+?)>?:?[ \t]*$", re.M)
_TRANSIENT = re.compile(r"\b(?:temporar|delayed|will (?:retry|try again))", re.I)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    original_message_id: str | None  # without brackets
    recipients: tuple[str, ...]  # Final-Recipient / Original-Recipient addresses
    status: str | None  # e.g. "5.1.1"
    action: str | None  # e.g. "failed"
    permanent: bool


def is_bounce_subject(subject: str) -> bool:
    """Whether a subject reads like a non-delivery notice ("Undeliverable: ...", ...)."""
    return _BOUNCE_SUBJECT.match(subject) is not None


def is_mailer_daemon(address: str) -> bool:
    """Whether an address is a mail system's own (MAILER-DAEMON, postmaster, Exchange)."""
    local = address.rpartition("@")[0] or address
    local = local.strip().lower()
    return local in _DAEMONS or local.startswith("microsoftexchange")


def has_empty_return_path(headers: Headers) -> bool:
    """Whether the message carries a null reverse path (`Return-Path: <>`)."""
    value = headers.get("Return-Path")
    return value is not None and "".join(value.split()) in ("", "<>")


def _delivery_report(
    parts: _Parts, sender: Address | None, subject: str, headers: Headers, text: str
) -> DeliveryReport | None:
    if parts.status:
        return _dsn_report(parts)
    daemon = sender is not None and is_mailer_daemon(sender.email)
    if is_bounce_subject(subject) and (daemon or has_empty_return_path(headers)):
        return _text_report(parts, text)
    return None


def _dsn_report(parts: _Parts) -> DeliveryReport:
    """RFC 3464: recipients, the failed (or first) recipient's status and action."""
    recipients: dict[str, None] = {}
    status = action = None
    for block in parts.status:
        for name in ("Final-Recipient", "Original-Recipient"):
            value = str(block.get(name, "")).rpartition(";")[2].strip().strip("<>").lower()
            if value:
                recipients[value] = None
        found = _STATUS.search(str(block.get("Status", "")))
        block_action = str(block.get("Action", "")).strip().lower() or None
        first = status is None and action is None
        worse = block_action == "failed" and action != "failed"
        if (found or block_action) and (first or worse):
            status, action = (found.group(1) if found else None), block_action
    return DeliveryReport(
        original_message_id=_returned_message_id(parts, ""),
        recipients=tuple(recipients),
        status=status,
        action=action,
        permanent=status.startswith("5") if status else action == "failed",
    )


def _text_report(parts: _Parts, text: str) -> DeliveryReport:
    """A bounce written for people (Exchange NDRs, qmail, exim): what the text reveals."""
    found = _STATUS.search(text)
    status = found.group(1) if found else None
    permanent = status.startswith("5") if status else _TRANSIENT.search(text) is None
    return DeliveryReport(
        original_message_id=_returned_message_id(parts, text),
        recipients=tuple(dict.fromkeys(address.lower() for address in _LONE_ADDRESS.findall(text))),
        status=status,
        action="failed" if permanent else "delayed",
        permanent=permanent,
    )


def _returned_message_id(parts: _Parts, text: str) -> str | None:
    """The bounced message's id: returned message or headers first, else the bounce text."""
    for returned in [*parts.returned, *parts.messages, text]:
        if isinstance(returned, Message):
            message_id = normalize_message_id(str(returned.get("Message-ID", "")))
        else:
            found = _QUOTED_MESSAGE_ID.search(returned)
            message_id = normalize_message_id(found.group(1)) if found else None
        if message_id is not None:
            return message_id
    return None
