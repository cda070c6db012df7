"""The email that confirms a new customer's address before their portal request opens a ticket.

Someone who is not signed in can type a request into the portal (`/requests/start`); it is
kept as a `PendingRequest` and `queue_request_confirmation` queues this email to the
address they gave, in the same transaction. The outbox worker calls
`prepare_request_confirmation`, which issues a single-use link of purpose `request` for
that address when the email leaves (a retry revokes the earlier one, as for every mail
with a link: see gateway/outbound/drafts.py) and notes the link on the pending request.
The portal opens the request when that link is used: its Continue page is the
confirmation, so a mail scanner fetching the link opens nothing.
"""

from __future__ import annotations

from functools import partial

from sqlalchemy.orm import Session

from gateway.auth.link_secrets import format_code
from gateway.auth.tokens import LinkPurpose, issue_link
from gateway.directory.branding import portal_url
from gateway.models import Contact, Mailbox, OutboxMessage, PendingRequest
from gateway.outbound.compose import mail_address, mail_translator
from gateway.outbound.drafts import Draft, Prepared, queue_draft, retire_earlier_link
from gateway.outbound.signin_mail import link_email
from gateway.settings import Settings

REQUEST_CONFIRMATION = "request_confirm"  # the outbox row's kind and the template's name


def queue_request_confirmation(
    session: Session, contact: Contact, pending: PendingRequest, *, mailbox: Mailbox
) -> None:
    """Queue the confirmation email for `pending` to `contact`'s address; nothing is issued yet."""
    draft = Draft(
        template=REQUEST_CONFIRMATION,
        context={},
        to_name=contact.name,
        to_email=contact.email,
        reply_to="",
        automatic=True,
        for_customer=True,
        link_contact_id=contact.id,
        pending_request_id=pending.id,
    )
    queue_draft(
        session, mailbox=mailbox, ticket=None, kind=REQUEST_CONFIRMATION, draft=draft, envelope_from=mailbox.address
    )


def prepare_request_confirmation(session: Session, settings: Settings, row: OutboxMessage) -> Prepared:
    """The confirmation email for a queued draft, issuing its link (valid from now) in `session`."""
    assert row.draft is not None, "only drafts are rendered"
    draft = Draft(**row.draft)
    assert draft.link_contact_id is not None and draft.pending_request_id is not None
    mailbox = session.get_one(Mailbox, row.mailbox_id)
    contact = session.get_one(Contact, draft.link_contact_id)
    pending = session.get_one(PendingRequest, draft.pending_request_id)
    retire_earlier_link(session, row)
    issued = issue_link(session, settings, contact, purpose=LinkPurpose.REQUEST)
    pending.link_id = issued.link.id
    speaking = mail_translator(contact, mailbox)
    context = {
        **speaking.template_values(),
        "brand": mailbox.display_name,
        "name": contact.name,
        "subject": pending.subject,
        "url": issued.url(portal_url(settings, mailbox)),
        "code": format_code(issued.code),
        "minutes": settings.signin_link_ttl_minutes,
    }
    build = partial(
        link_email,
        settings,
        sender=mail_address(mailbox.display_name, mailbox.address),
        to=mail_address(draft.to_name, draft.to_email),
        subject=speaking.gettext("Confirm your request to %(brand)s") % {"brand": mailbox.display_name},
        message_id=f"<{row.rfc_message_id}>",
        template=REQUEST_CONFIRMATION,
        context=context,
    )
    return Prepared(build, issued)
