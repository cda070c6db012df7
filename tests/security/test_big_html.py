"""One customer's huge HTML mail must not stall the portal for everyone else.

A 17 MB HTML mail (tables, paragraphs, inline styles, links, images) arrives through the
production path (`Gateway.receive`, then the processor). While its owner opens the
ticket four times at once, another contact's ticket list and `/healthz` are timed: each
must answer within 100 ms. The ticket page itself shows the text version and offers the
original for download, with the same access rule as an attachment.
"""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import Contact, InboundEmail, Mailbox, Message, Ticket
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.portal.helpers import Client, add_contact, add_ticket, issue, with_settings
from tests.security.world import NewBrowser
from tests.support import SUPPORT

pytestmark = pytest.mark.timeout(300)

MiB = 1024 * 1024
OWNER = "bigsender@customer.test"
OTHER = "bob@other.test"
QUICK = 0.1  # seconds: what "answers at once" means for a page that has nothing to do with the big mail


def big_html(size: int = 17 * MiB) -> str:
    """Newsletter-style HTML of about `size` characters: nested tables, styled paragraphs, links."""
    pieces = ["<html><head><style>p{margin:0}</style></head><body>"]
    total, row = 0, 0
    while total < size:
        row += 1
        piece = (
            f'<table style="border:1px solid #ccc;width:100%;border-collapse:collapse" width="600">'
            f'<tr><td style="padding:4px 8px;color:#333;font-family:Arial,sans-serif" width="30%">Item {row}</td>'
            f'<td style="padding:4px 8px;background:#f6f6f6"><span style="font-weight:bold">Value {row}</span> '
            f'<a href="https://shop.example.com/item/{row}?utm_source=mail" style="color:#06c">details</a> '
            f'<img src="https://cdn.example.com/p/{row}.png" width="16" height="16" alt="*"></td></tr></table>\n'
            f'<p style="margin:0 0 8px 0;font-size:14px;line-height:1.4;color:#222">Paragraph {row}: the order '
            f"&amp; its shipping status, with <em>emphasis</em>, <strong>strong words</strong> and a "
            f'<span style="color:#c00">red note</span> <script>alert({row})</script>.</p>\n'
        )
        pieces.append(piece)
        total += len(piece)
    pieces.append("</body></html>\n")
    return "".join(pieces)


def big_mail(html: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Big Sender <{OWNER}>"
    mail["To"] = SUPPORT
    mail["Subject"] = "Our whole order history"
    mail["Message-ID"] = "<big-html-1@customer.test>"
    mail.set_content(html, subtype="html", cte="8bit")
    return mail.as_bytes()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_settings(settings, max_message_size=32 * MiB)


async def _signed_in(new_browser: NewBrowser, settings: Settings, db: Database, contact: Contact) -> Client:
    browser = await new_browser()
    await browser.sign_in(await issue(db, settings, contact))
    return browser.client


async def _big_ticket(gateway: Gateway, db: Database, html: str) -> tuple[Ticket, Contact, Message]:
    inbound_id = await gateway.receive(big_mail(html), mail_from=OWNER, rcpt_tos=(SUPPORT,))
    await gateway.processor.drain()

    def look(session: Session):
        inbound = session.get_one(InboundEmail, inbound_id)
        assert inbound.ticket_id is not None, (inbound.status, inbound.last_error)
        ticket = session.get_one(Ticket, inbound.ticket_id)
        owner = session.get_one(Contact, ticket.requester_id)
        message = session.scalar(select(Message).where(Message.ticket_id == ticket.id))
        assert message is not None
        return ticket, owner, message

    ticket, owner, message = await db.read(orm(look))
    return ticket, owner, message


async def _timed(client: Client, path: str) -> float:
    began = time.perf_counter()
    async with client.get(path, allow_redirects=False) as response:
        await response.read()
        assert response.status == 200, (path, response.status)
    return time.perf_counter() - began


async def test_four_views_of_a_17_mb_html_ticket_leave_other_pages_and_healthz_quick(
    gateway: Gateway, db: Database, settings: Settings, mailbox: Mailbox, new_browser: NewBrowser
) -> None:
    ticket, owner, _ = await _big_ticket(gateway, db, big_html())
    bob = await add_contact(db, OTHER, "Bob")
    bobs = await add_ticket(db, mailbox, bob, "Bob's own question")
    owner_client = await _signed_in(new_browser, settings, db, owner)
    bob_client = await _signed_in(new_browser, settings, db, bob)
    for _ in range(3):  # templates compiled, statements cached, connections open: what is timed is the waiting
        for path in ("/tickets", "/healthz", f"/tickets/{bobs.public_id}"):
            await _timed(bob_client, path)

    async def view() -> tuple[int, str]:
        async with owner_client.get(f"/tickets/{ticket.public_id}", allow_redirects=False) as response:
            return response.status, await response.text()

    async def round_of_views() -> dict[str, float]:
        """Four views at once; meanwhile Bob's list and /healthz, timed one after another."""
        views = [asyncio.create_task(view()) for _ in range(4)]
        timings: dict[str, list[float]] = {"/tickets": [], "/healthz": []}
        while not all(task.done() for task in views) or not timings["/tickets"]:
            for path, seen in timings.items():
                seen.append(await _timed(bob_client, path))
        answers = await asyncio.gather(*views)
        assert all(status == 200 for status, _ in answers), [status for status, _ in answers]
        assert all("Paragraph 1:" in page for _, page in answers), "the owner's page does not show the mail"
        return {path: round(max(seen), 3) for path, seen in timings.items()}

    # The machine running the suite may be busy with other work: a round in which nothing
    # waited is the proof, so up to three rounds are tried (a stalled loop stalls every one).
    rounds = []
    for _ in range(3):
        rounds.append(await round_of_views())
        if max(rounds[-1].values()) < QUICK:
            break
    assert max(rounds[-1].values()) < QUICK, f"other pages waited while the big mail was shown (s): {rounds}"
    listing = await (await bob_client.get("/tickets")).text()
    assert "Bob&#39;s own question" in listing or "Bob's own question" in listing


async def test_a_mail_over_the_display_cap_shows_its_text_and_offers_the_original(
    gateway: Gateway, db: Database, settings: Settings, new_browser: NewBrowser
) -> None:
    html = big_html(8 * MiB)
    ticket, owner, message = await _big_ticket(gateway, db, html)
    client = await _signed_in(new_browser, settings, db, owner)
    page = await (await client.get(f"/tickets/{ticket.public_id}")).text()
    assert "too large to show here" in page
    original = f"/tickets/{ticket.public_id}/messages/{message.public_id}/original"
    assert f'href="{original}"' in page
    assert "Paragraph 1:" in page and "alert(" not in page
    assert len(page) < 2 * settings.max_display_html_bytes, "the text shown is not bounded"
    async with client.get(original) as download:
        assert download.status == 200
        assert download.headers["Content-Type"] == "application/octet-stream"
        assert download.headers["Content-Disposition"].startswith("attachment;")
        assert "sandbox" in download.headers["Content-Security-Policy"]
        assert (await download.read()).decode() == html


async def test_html_is_sanitized_once_when_the_mail_is_processed(
    gateway: Gateway, db: Database, settings: Settings, new_browser: NewBrowser
) -> None:
    html = '<p style="color:red">Hello <b>there</b><script>alert(1)</script><img src="cid:logo@x"></p>'
    ticket, owner, message = await _big_ticket(gateway, db, html)
    assert message.display_html is not None and "<b>there</b>" in message.display_html
    assert "script" not in message.display_html and "style" not in message.display_html
    client = await _signed_in(new_browser, settings, db, owner)
    page = await (await client.get(f"/tickets/{ticket.public_id}")).text()
    assert "Hello <b>there</b>" in page and "too large" not in page


async def test_a_message_stored_before_sanitizing_at_ingest_is_sanitized_on_first_view_and_kept(
    gateway: Gateway, db: Database, settings: Settings, new_browser: NewBrowser
) -> None:
    html = "<p>Old <i>message</i><script>alert(1)</script></p>"
    ticket, owner, message = await _big_ticket(gateway, db, html)

    def change(session: Session):
        stored = session.get_one(Message, message.id)
        stored.display_html = None

    await db.write(change)
    client = await _signed_in(new_browser, settings, db, owner)
    page = await (await client.get(f"/tickets/{ticket.public_id}")).text()
    assert "Old <i>message</i>" in page and "alert(1)" not in page

    def look(session: Session):
        kept = session.get_one(Message, message.id)
        assert kept.display_html is not None and "<i>message</i>" in kept.display_html

    await db.read(orm(look))
