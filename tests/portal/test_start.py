"""A way in for new customers: the sign-in page says how to reach support, and a request
typed into the portal opens a ticket only once the address is confirmed by a mailed link."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.models import Contact, Mailbox, PendingRequest, Ticket
from gateway.outbound.outbox import OutboxWorker
from gateway.outbound.senders import MaildirSender
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.portal.helpers import LINK_IN_MAIL, Client, add_contact, audit_events, post_form, with_settings
from tests.support import SUPPORT

STRANGER = "newperson@example.net"
REQUEST = {"subject": "Printer offline", "message": "The printer on floor 2 says offline.", "name": "New Person"}


def _comparable(body: str, address: str) -> str:
    return re.sub(r'value="[A-Za-z0-9_-]{43}"', 'value="TOKEN"', body).replace(address, "ADDRESS")


async def confirmations(db: Database, settings: Settings) -> list[EmailMessage]:
    """Every confirmation email sent so far, delivered into the maildir and read back."""
    await OutboxWorker(db, settings, MaildirSender(settings.maildir_dir)).drain()
    if not settings.maildir_dir.exists():
        return []
    mails = [message_from_bytes(path.read_bytes(), policy=policy.default)
             for path in sorted((settings.maildir_dir / "new").iterdir(), key=lambda p: p.stat().st_mtime)]  # fmt: skip
    return [m for m in mails if str(m["Subject"]).startswith("Confirm your request")]  # type: ignore[misc]


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


async def ticket_count(db: Database) -> int:
    def _look(session: Session):
        return int(session.scalar(select(func.count(Ticket.id))) or 0)

    return await db.read(orm(_look))


async def test_the_sign_in_page_says_how_to_reach_support_and_offers_a_new_request(client: Client) -> None:
    for path in ("/login",):
        page = await (await client.get(path)).text()
        assert f'href="mailto:{SUPPORT}"' in page and 'href="/requests/start">start a new request</a>' in page
    sent = await post_form(client, "/login", {"email": STRANGER})
    assert 'href="/requests/start"' in await sent.text()


async def test_a_new_request_answers_known_and_unknown_addresses_alike_and_opens_nothing_yet(
    client: Client, db: Database, settings: Settings
) -> None:
    await add_contact(db)
    known = await post_form(client, "/requests/start", {"email": "alice@example.test", **REQUEST})
    unknown = await post_form(client, "/requests/start", {"email": STRANGER, **REQUEST})

    assert known.status == unknown.status == 200
    assert _comparable(await known.text(), "alice@example.test") == _comparable(await unknown.text(), STRANGER)
    assert "expires in 15 minutes" in await unknown.text()
    mails = await confirmations(db, settings)
    assert sorted(str(m["To"]) for m in mails) == ["Alice Doe <alice@example.test>", f"New Person <{STRANGER}>"]
    assert all("Printer offline" in text_of(m) and "expires in 15 minutes" in text_of(m) for m in mails)
    assert await ticket_count(db) == 0


async def test_confirming_by_the_mailed_link_opens_the_ticket_once_and_signs_the_customer_in(
    client: Client, db: Database, settings: Settings
) -> None:
    await post_form(client, "/requests/start", {"email": STRANGER, **REQUEST})
    [mail] = await confirmations(db, settings)
    token = LINK_IN_MAIL.search(text_of(mail))
    assert token is not None
    path = f"/l/{token.group(1)}"

    assert (await client.head(path)).status == 200
    page = await client.get(path)
    assert "Confirm your request" in await page.text() and await ticket_count(db) == 0

    confirmed = await post_form(client, path, {})
    assert confirmed.status == 303 and confirmed.headers["Location"].endswith("?notice=created")
    opened = await client.get(confirmed.headers["Location"])
    body = await opened.text()
    assert opened.status == 200 and "Printer offline" in body and "The printer on floor 2 says offline." in body
    again = await post_form(client, path, {})
    assert again.status in (303, 410) and await ticket_count(db) == 1

    def _look(session: Session):
        ticket = session.scalar(select(Ticket))
        requester = session.get_one(Contact, ticket.requester_id) if ticket else None
        pending = session.scalar(select(PendingRequest))
        return requester, pending

    requester, pending = await db.read(orm(_look))
    assert requester is not None and requester.email == STRANGER and requester.name == "New Person"
    assert pending is not None and pending.opened_at is not None
    assert [e.event for e in await audit_events(db, "request.pending")] == ["request.pending"]


async def test_a_request_with_problems_is_shown_again_with_what_to_change(client: Client, db: Database) -> None:
    bad = await post_form(client, "/requests/start", {"email": "not an address", **REQUEST})
    assert bad.status == 400 and "Enter your email address" in await bad.text() and "Printer offline" in await bad.text()
    empty = await post_form(client, "/requests/start", {"email": STRANGER, "subject": "", "message": "x"})
    assert empty.status == 400 and "Give your request a subject" in await empty.text()

    def _look(session: Session):
        assert session.scalar(select(func.count(PendingRequest.id))) == 0

    await db.read(orm(_look))


async def test_new_requests_are_rate_limited_per_address_before_any_mail_is_queued(
    make_client: object, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    limited = with_settings(settings, rate_limit_mail_per_address=2)
    client = await make_client(limited)  # type: ignore[operator]
    answers = [(await post_form(client, "/requests/start", {"email": STRANGER, **REQUEST})).status for _ in range(3)]
    assert answers == [200, 200, 429]
    assert len(await confirmations(db, limited)) == 2
