"""Mail with a magic link, queued as a draft and rendered, link and all, each time it is sent.

The processor, the agent-reply path and the portal's sign-in requests decide *that*
someone is mailed, inside the transaction of the change: `queue_draft` stores an outbox
row naming the recipient, the template and its context, the Reply-To, and a Message-ID
fixed up front, so a reply to the email threads through the row before and after it is
sent. The outbox worker renders the row at every attempt (`render_draft` for ticket mail,
`gateway.outbound.signin_mail.render_signin_draft` for sign-in mail): the thread headers as they
were when the row was queued and, for a customer, a fresh single-use link issued in the
transaction that also stores the row's copy, so the link's lifetime starts when the email
leaves. The files of the message it is about go with it (gateway/outbound/files.py), a
notification's download links made at that moment too. Only the copy with the link, code
and download links replaced (`LINK_SENT`, `CODE_SENT`, `REDACTED`) is kept
on the row: the live bytes exist in memory until the relay has them, and no column ever
holds a usable token or code. A retry therefore mints a fresh link and revokes the one the
earlier attempt carried (a copy of that attempt that did arrive shows the link's friendly
page, which mails a new one); the Message-ID stays, so threads hold.

Composing MIME is the costly part of ticket mail, so it happens outside every transaction:
a renderer (`prepare_draft`, `prepare_signin_draft`, `prepare_request_confirmation`) does
the database's part in the outbox worker's transaction (reading the thread, issuing the
link) and returns a `Prepared` email, which `Prepared.render` builds after the commit. The
processing transaction, and on SQLite the write lock every 250 waits for, stay short.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP
from functools import partial

from sqlalchemy import insert
from sqlalchemy.orm import Session

from gateway.auth.downloads import REDACTED
from gateway.auth.exposed import revoke_link
from gateway.auth.link_secrets import format_code
from gateway.auth.tokens import IssuedLink, LinkPurpose, default_ttl, issue_link
from gateway.directory.branding import portal_url
from gateway.models import Contact, Mailbox, Message, OutboxMessage, Ticket, utcnow
from gateway.outbound.compose import (
    LinkBlock,
    compose,
    mail_address,
    mail_translator,
    new_message_id,
)
from gateway.outbound.files import NO_FILES, OutgoingFiles, files_for_agent, message_files
from gateway.outbound.threads import conversation_thread
from gateway.settings import Settings
from gateway.storage import statements
from gateway.tickets.events import is_mail_muted
from gateway.tickets.satisfaction import issue_rating_link

# No unit of work for a row nobody reads back here.
_QUEUE = statements.prepare("outbox.queue_draft", insert(OutboxMessage.__table__))
LINK_SENT = "[sign-in link sent]"
CODE_SENT = "[sign-in code sent]"
RATING_SENT = "[rating link sent]"


@dataclass(frozen=True, slots=True)
class Draft:
    """What one email will say and to whom; JSON on the outbox row until it is rendered."""

    template: str
    context: dict[str, str]
    to_name: str
    to_email: str
    reply_to: str
    automatic: bool
    for_customer: bool  # a customer's thread leaves out the notifications agents got
    from_name: str | None = None
    link_contact_id: int | None = None  # mail a fresh magic link for this contact
    return_path: str | None = None  # where the link leads after signing in (sign-in mail)
    # The To and Cc headers as [name, address] pairs, when they show more than the recipient.
    shown_to: tuple[tuple[str, str], ...] = ()
    shown_cc: tuple[tuple[str, str], ...] = ()
    with_files: bool = False  # carry the files of the row's message
    agent_id: int | None = None  # the agent a notification goes to (their download links)
    pending_request_id: int | None = None  # the request the link opens (confirmation mail)


@dataclass(frozen=True, slots=True)
class Rendered:
    """One attempt's email: the bytes to send (never stored) and the copy the row keeps."""

    raw: bytes
    kept: bytes
    link_id: int | None


@dataclass(frozen=True, slots=True)
class Prepared:
    """One attempt's email after its transaction: the secrets it issued and how to build it.

    `build` reads only what the transaction loaded (relationships raise rather than load),
    so it runs after the commit, off the database's write lock.
    """

    build: Callable[[], EmailMessage]
    issued: IssuedLink | None
    downloads: Sequence[str] = ()
    rating_token: str | None = None

    def render(self) -> Rendered:
        return rendered(self.build(), self.issued, self.downloads, self.rating_token)


_DRAFT_FIELDS = tuple(field.name for field in fields(Draft))


def draft_values(draft: Draft) -> dict[str, object]:
    """The draft as the row's JSON (asdict would deep-copy the context)."""
    return {name: getattr(draft, name) for name in _DRAFT_FIELDS}


def queue_draft(
    session: Session,
    *,
    mailbox: Mailbox,
    ticket: Ticket | None,
    kind: str,
    draft: Draft,
    envelope_from: str,
    message: Message | None = None,
) -> None:
    """Queue `draft` for delivery; the recipient's address must pass `mail_address`.

    Nothing is queued while the session's mail is muted (a replay that mails nobody).
    """
    if is_mail_muted(session):
        return
    statements.rows(
        _QUEUE,
        session.connection(),
        {
            "kind": kind,
            "mailbox_id": mailbox.id,
            "ticket_id": ticket.id if ticket is not None else None,
            "message_id": message.id if message else None,
            "mail_from": envelope_from,
            "rcpt_tos": [draft.to_email],
            "rfc_message_id": new_message_id(mailbox),
            "draft": draft_values(draft),
            "next_attempt_at": utcnow(),
        },
    )


def _placeholders(issued: IssuedLink | None, downloads: Sequence[str], rating_token: str | None) -> dict[str, str]:
    """Each secret the email carries, with the text that replaces it in the kept copy."""
    replaced = {token: REDACTED for token in downloads}
    if rating_token:
        replaced[rating_token] = RATING_SENT
    if issued is not None:
        code = format_code(issued.code)
        replaced |= {issued.token: LINK_SENT, code: CODE_SENT, issued.code: CODE_SENT}
    return replaced


def without_secrets(email: EmailMessage, replaced: dict[str, str]) -> bytes:
    """`email` as bytes with each secret of `replaced` replaced in the text parts.

    Changes `email`: call it after the bytes to send were taken.
    """
    for part in email.walk():
        if part.get_content_maintype() != "text" or part.is_multipart() or part.get_filename():
            continue
        text = kept = part.get_content()
        for secret, placeholder in replaced.items():
            kept = kept.replace(secret, placeholder)
        if kept != text:
            part.set_content(kept, subtype=part.get_content_subtype())
    return email.as_bytes(policy=SMTP)


def rendered(
    email: EmailMessage, issued: IssuedLink | None, downloads: Sequence[str] = (), rating_token: str | None = None
) -> Rendered:
    """The bytes to send and the copy to keep: the same bytes when the email carries no secret."""
    raw = email.as_bytes(policy=SMTP)
    replaced = _placeholders(issued, downloads, rating_token)
    kept = without_secrets(email, replaced) if replaced else raw
    return Rendered(raw, kept, issued.link.id if issued is not None else None)


def retire_earlier_link(session: Session, row: OutboxMessage) -> None:
    """A retry sends a fresh link: the one the earlier attempt carried stops working."""
    if row.link_id is not None:
        revoke_link(session, row.link_id)


def prepare_draft(session: Session, settings: Settings, row: OutboxMessage) -> Prepared:
    """The email for a queued ticket-mail draft, issuing its magic link in `session`."""
    assert row.draft is not None and row.ticket_id is not None, "only ticket drafts are rendered here"
    draft = Draft(**row.draft)
    mailbox = session.get_one(Mailbox, row.mailbox_id)
    ticket = session.get_one(Ticket, row.ticket_id)
    retire_earlier_link(session, row)
    link, issued, rating, speaking = None, None, None, None
    if draft.link_contact_id is not None:
        contact = session.get_one(Contact, draft.link_contact_id)
        speaking = mail_translator(contact, mailbox)
        issued = issue_link(session, settings, contact, ticket=ticket, purpose=LinkPurpose.REPLY)
        if draft.context.get("rate") and ticket.resolved_at is not None:  # "How did we do?"
            rating = issue_rating_link(session, settings, ticket, contact, portal_url(settings, mailbox))
        minutes = default_ttl(settings, LinkPurpose.REPLY) // timedelta(minutes=1)
        link = LinkBlock(issued.url(portal_url(settings, mailbox)), format_code(issued.code), minutes)
    files = _files(session, settings, draft, row, mailbox)
    build = partial(
        compose,
        settings,
        mailbox,
        ticket,
        to=mail_address(draft.to_name, draft.to_email),
        shown_to=[mail_address(name, address) for name, address in draft.shown_to],
        cc=[mail_address(name, address) for name, address in draft.shown_cc],
        files=files,
        template=draft.template,
        context=draft.context,
        reply_to=draft.reply_to,
        thread=conversation_thread(session, ticket, for_customer=draft.for_customer, before=row),
        automatic=draft.automatic,
        message_id=row.rfc_message_id,
        from_name=draft.from_name,
        link=link,
        rating=rating,
        speaking=speaking,
    )
    # `compose` is looked up now, not when the email is built: tests watch it there.
    return Prepared(build, issued, files.secrets, rating.token if rating else None)


def _files(
    session: Session, settings: Settings, draft: Draft, row: OutboxMessage, mailbox: Mailbox
) -> OutgoingFiles:
    """The files of the row's message: all attached for a customer, for an agent within the limit."""
    if not draft.with_files or row.message_id is None:
        return NO_FILES
    files = message_files(session, row.message_id)
    if draft.agent_id is None:
        return OutgoingFiles(attached=files)
    return files_for_agent(settings, files, agent_id=draft.agent_id, portal=portal_url(settings, mailbox))
