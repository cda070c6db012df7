"""Which inbound mail must never be answered: loops, bounces, auto-replies and list traffic.

This module owns the rules for mail that must not be answered (docs/architecture.md). It reads only the
top-level headers and structure of a `ParsedEmail` (never quoted or forwarded text) plus
the SMTP envelope sender, and returns one `MailKind` with the reasons that matched, in a
fixed priority: our own loop header first, then bounces (RFC 3464 reports, MAILER-DAEMON
or null-sender mail with a non-delivery subject), then auto-replies (RFC 3834
Auto-Submitted, X-Autoreply, X-Autorespond, X-Auto-Response-Suppress, Precedence:
auto_reply, or a null sender on its own), then list and bulk mail. Only NORMAL mail is
answerable; everything else is stored without an acknowledgement or magic link.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from gateway.mail.parse import ParsedEmail, has_empty_return_path, is_bounce_subject, is_mailer_daemon

_AUTO_REPLY_SUBJECT = re.compile(
    r"\s*(?:automatic reply|auto(?:matic)?[- ]?reply|autoreply|auto:|out of (?:the )?office"
    r"|abwesenheitsnotiz|automatische antwort|réponse automatique|respuesta automática)",
    re.I,
)
_DAEMON_LOCAL_PARTS = frozenset({"mailer-daemon", "mailerdaemon", "mail-daemon"})
_DELIVERY_STATUS_REPORT = re.compile(
    r"^\s*multipart/report\b.*\breport-type\s*=\s*\"?delivery-status", re.I | re.S
)


class MailKind(StrEnum):
    NORMAL = "normal"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    LIST = "list"
    LOOP = "loop"


@dataclass(frozen=True, slots=True)
class Classification:
    kind: MailKind
    reasons: tuple[str, ...]  # e.g. ("Auto-Submitted: auto-replied",)

    @property
    def answerable(self) -> bool:
        """Only normal mail gets an acknowledgement or a magic link."""
        return self.kind is MailKind.NORMAL


def classify(
    mail: ParsedEmail,
    *,
    loop_header: str = "X-Wicket-Loop",
    loop_token: str | None = None,
    envelope_sender: str | None = None,
) -> Classification:
    """Classify `mail`; `envelope_sender` is the SMTP MAIL FROM ("" or "<>" for bounces)."""
    loop = _loop_reasons(mail, loop_header, loop_token)
    null_sender = _null_sender_reasons(mail, envelope_sender)
    bounce = _bounce_reasons(mail, null_sender)
    auto_reply = _auto_reply_reasons(mail)
    listed = _list_reasons(mail)
    if auto_reply or null_sender:
        auto_reply += _auto_reply_subject(mail)
    for kind, reasons in (
        (MailKind.LOOP, loop),
        (MailKind.BOUNCE, bounce),
        (MailKind.AUTO_REPLY, auto_reply + null_sender),
        (MailKind.LIST, listed),
    ):
        if reasons:
            every = [*loop, *bounce, *auto_reply, *null_sender, *listed]
            return Classification(kind, tuple(dict.fromkeys(every)))
    return Classification(MailKind.NORMAL, ())


def _loop_reasons(mail: ParsedEmail, header: str, token: str | None) -> list[str]:
    values = mail.headers.get_all(header)
    if token is not None:
        values = [value for value in values if value.strip() == token]
    return [f"{header}: {value}" for value in values[:1]]


def _null_sender_reasons(mail: ParsedEmail, envelope_sender: str | None) -> list[str]:
    reasons = []
    if envelope_sender is not None and envelope_sender.strip() in ("", "<>"):
        reasons.append("envelope sender <>")
    if has_empty_return_path(mail.headers):
        reasons.append("Return-Path: <>")
    return reasons


def _bounce_reasons(mail: ParsedEmail, null_sender: list[str]) -> list[str]:
    reasons = []
    content_type = mail.headers.get("Content-Type") or ""
    if _DELIVERY_STATUS_REPORT.match(content_type):
        reasons.append("Content-Type: multipart/report; report-type=delivery-status")
    elif mail.delivery_report is not None:
        reasons.append("delivery report in the body")
    if is_bounce_subject(mail.subject):
        sender = mail.sender.email if mail.sender is not None else ""
        if is_mailer_daemon(sender):
            reasons += [f"From: {sender}", f"Subject: {mail.subject}"]
        elif null_sender:
            reasons.append(f"Subject: {mail.subject}")
    return reasons


def _auto_reply_reasons(mail: ParsedEmail) -> list[str]:
    headers = mail.headers
    reasons = []
    for value in headers.get_all("Auto-Submitted"):
        if value.partition(";")[0].strip().lower() not in ("no", ""):
            reasons.append(f"Auto-Submitted: {value}")
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"):
        reasons += [f"{name}: {value}" for value in headers.get_all(name) if value.strip()]
    for value in headers.get_all("Precedence"):
        if value.strip().lower() == "auto_reply":
            reasons.append(f"Precedence: {value}")
    if mail.sender is not None and mail.sender.email.partition("@")[0] in _DAEMON_LOCAL_PARTS:
        reasons.append(f"From: {mail.sender.email}")  # never a person, whatever the subject
    return reasons


def _auto_reply_subject(mail: ParsedEmail) -> list[str]:
    """An "Automatic reply:"/"Out of Office" subject: supporting evidence, never enough alone."""
    return [f"Subject: {mail.subject}"] if _AUTO_REPLY_SUBJECT.match(mail.subject) else []


def _list_reasons(mail: ParsedEmail) -> list[str]:
    headers = mail.headers
    reasons = [
        f"Precedence: {value}"
        for value in headers.get_all("Precedence")
        if value.strip().lower() in ("bulk", "junk", "list")
    ]
    for name in ("List-Id", "List-Unsubscribe"):
        reasons += [f"{name}: {value}" for value in headers.get_all(name)[:1]]
    return reasons
