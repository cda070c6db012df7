"""A contact's tickets in the portal: the list, the thread, who may see what, closing."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from gateway.models import InboundEmail, Mailbox, Ticket, TicketStatus
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.portal.helpers import Client, MakeClient, add_contact, add_ticket, audit_events, post_form
from tests.portal.story import (
    TICKET_LINK,
    agent_replies,
    internal_note,
    messages_of,
    reload,
    signed_in,
    tom,
)
from tests.support import ReceiveEmail

ALICE = "alice@customer.test"


async def set_status(db: Database, ticket_id: int, status: TicketStatus) -> None:
    def change(session: Session):
        (session.get_one(Ticket, ticket_id)).status = status

    await db.write(change)


async def ticket_of(db: Database, inbound: InboundEmail) -> Ticket:
    return await db.read(orm(lambda session: session.get_one(Ticket, inbound.ticket_id)))


def thread_of(body: str) -> str:
    """The thread part of a ticket page (without the reply form and the page's own script)."""
    return body[body.index('<ol class="thread">') : body.index('<section class="card reply-card"')]


async def test_the_list_shows_open_tickets_first_with_status_and_activity(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db, ALICE)
    done = await add_ticket(db, mailbox, alice, "Old invoice question")
    await set_status(db, done.id, TicketStatus.CLOSED)
    first = await add_ticket(db, mailbox, alice, "Printer jams")
    waiting = await add_ticket(db, mailbox, alice, "VPN drops")
    await set_status(db, waiting.id, TicketStatus.PENDING)
    await signed_in(client, db, settings, alice)

    body = await (await client.get("/tickets")).text()

    assert TICKET_LINK.findall(body) == [waiting.public_id, first.public_id, done.public_id]
    assert "Waiting for your reply" in body and "Closed" in body and "Open" in body
    assert f"#{first.ref}" in body and "updated" in body


async def test_the_list_filters_open_and_closed_tickets(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db, ALICE)
    open_one = await add_ticket(db, mailbox, alice, "Still broken")
    closed_one = await add_ticket(db, mailbox, alice, "Fixed already")
    await set_status(db, closed_one.id, TicketStatus.RESOLVED)
    await signed_in(client, db, settings, alice)

    open_page = await (await client.get("/tickets?status=open")).text()
    closed_page = await (await client.get("/tickets?status=closed")).text()

    assert TICKET_LINK.findall(open_page) == [open_one.public_id]
    assert TICKET_LINK.findall(closed_page) == [closed_one.public_id]
    assert 'href="?status=open" aria-current="page"' in open_page


async def test_the_list_comes_a_page_at_a_time(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db, ALICE)
    for number in range(23):
        await add_ticket(db, mailbox, alice, f"Question {number}")
    await signed_in(client, db, settings, alice)

    first = await (await client.get("/tickets")).text()
    second = await (await client.get("/tickets?status=all&page=2")).text()

    assert len(TICKET_LINK.findall(first)) == 20 and "Page 1 of 2" in first
    assert len(TICKET_LINK.findall(second)) == 3 and "Page 2 of 2" in second
    assert not set(TICKET_LINK.findall(first)) & set(TICKET_LINK.findall(second))


async def test_an_agent_reply_marks_the_ticket_unread_until_it_is_opened(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db, ALICE)
    ticket = await add_ticket(db, mailbox, alice)
    await signed_in(client, db, settings, alice)
    assert "is-unread" not in await (await client.get("/tickets")).text()

    await agent_replies(db, settings, ticket, await tom(db), "Have you tried the other tray?")
    assert "is-unread" in await (await client.get("/tickets")).text()

    await client.get(f"/tickets/{ticket.public_id}")
    assert "is-unread" not in await (await client.get("/tickets")).text()


async def test_an_internal_note_neither_marks_unread_nor_shows(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db, ALICE)
    ticket = await add_ticket(db, mailbox, alice)
    await signed_in(client, db, settings, alice)
    await internal_note(db, ticket, "Customer is on the legacy plan, be careful")

    listing = await (await client.get("/tickets")).text()
    page = await (await client.get(f"/tickets/{ticket.public_id}")).text()

    assert "is-unread" not in listing
    assert "legacy plan" not in page


async def test_the_ticket_page_shows_the_whole_thread_in_order(
    client: Client, db: Database, settings: Settings, receive_email: ReceiveEmail
) -> None:
    inbound = await receive_email("new-request.eml")
    await receive_email("reply-gmail.eml")
    ticket = await ticket_of(db, inbound)
    agent = await tom(db)
    await agent_replies(db, settings, ticket, agent, "A technician is on the way.")
    await internal_note(db, ticket, "Secret: the technician is late again")
    alice = await add_contact(db, ALICE)
    await signed_in(client, db, settings, alice)

    response = await client.get(f"/tickets/{ticket.public_id}")
    body = await response.text()

    assert response.status == 200
    first, second, third = (
        body.index(t) for t in ("jammed", "turning it off and on again", "technician is on the way")
    )
    assert first < second < third
    assert "Tom Agent · Example Support" in body
    assert "technician is late" not in body
    assert '<details class="quoted">' in body and "Show quoted text" in body


async def test_another_contacts_ticket_is_not_found(
    make_client: MakeClient, client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db, ALICE)
    ticket = await add_ticket(db, mailbox, alice, "Private matter")
    mallory = await add_contact(db, "mallory@evil.test", "Mallory")
    await signed_in(client, db, settings, mallory)

    guessed = await client.get(f"/tickets/{ticket.public_id}")
    missing = await client.get("/tickets/aaaaaaaaaaaaaaaa")
    listing = await (await client.get("/tickets")).text()

    assert guessed.status == missing.status == 404
    assert "Private matter" not in await guessed.text() and "Private matter" not in listing
    assert await audit_events(db, "ticket.viewed") == []


async def test_visitors_are_sent_to_sign_in_first(client: Client, db: Database, mailbox: Mailbox) -> None:
    alice = await add_contact(db, ALICE)
    ticket = await add_ticket(db, mailbox, alice)
    response = await client.get(f"/tickets/{ticket.public_id}", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == f"/login?next=/tickets/{ticket.public_id}"


async def test_every_view_of_a_ticket_is_audited(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db, ALICE)
    ticket = await add_ticket(db, mailbox, alice)
    await signed_in(client, db, settings, alice)

    await client.get(f"/tickets/{ticket.public_id}")
    await client.get(f"/tickets/{ticket.public_id}")

    views = await audit_events(db, "ticket.viewed")
    assert len(views) == 2
    assert all(v.contact_id == alice.id and v.ticket_id == ticket.id and v.detail == {"shared": False} for v in views)
    assert views[0].request_ip == "127.0.0.1"


async def test_closing_a_ticket_leaves_a_note_for_the_team_and_a_reply_reopens_it(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db, ALICE)
    ticket = await add_ticket(db, mailbox, alice)
    await signed_in(client, db, settings, alice)
    page = f"/tickets/{ticket.public_id}"

    closed = await post_form(client, f"{page}/close", {}, page=page)
    assert closed.status == 303 and closed.headers["Location"] == f"{page}?notice=closed"
    assert (await reload(db, ticket)).status == TicketStatus.CLOSED
    [note] = [m for m in await messages_of(db, ticket.id) if m.internal]
    assert "closed this ticket in the portal" in note.body_text
    body = await (await client.get(closed.headers["Location"])).text()
    assert "Reply to open this ticket again" in body and "Close this ticket" not in body
    assert len(await audit_events(db, "ticket.closed")) == 1

    replied = await post_form(client, f"{page}/reply", {"message": "Sorry, it is broken again."}, page=page)
    assert replied.status == 303
    assert (await reload(db, ticket)).status == TicketStatus.OPEN


async def test_only_participants_may_close_and_the_form_needs_its_token(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db, ALICE)
    ticket = await add_ticket(db, mailbox, alice)
    await signed_in(client, db, settings, alice)

    forged = await client.post(f"/tickets/{ticket.public_id}/close", data={}, allow_redirects=False)

    assert forged.status == 403
    assert (await reload(db, ticket)).status == TicketStatus.OPEN


async def test_html_mail_is_shown_sanitized_with_its_inline_image_and_files(
    client: Client, db: Database, settings: Settings, receive_email: ReceiveEmail
) -> None:
    inbound = await receive_email("xss-attempts.eml")
    xavier = await add_contact(db, "xavier@customer.test")
    await signed_in(client, db, settings, xavier)
    ticket = await ticket_of(db, inbound)

    thread = thread_of(await (await client.get(f"/tickets/{ticket.public_id}")).text())

    assert "the printer prints blank pages" in thread
    assert '<a href="https://example.com/manual"' in thread
    for hostile in (
        "<script",
        "onerror",
        "onload",
        "javascript:",
        "<iframe",
        "<form",
        "<object",
        "<embed",
        "evil.test",
    ):
        assert hostile not in thread.lower(), hostile
    assert "alert(" not in thread.replace("&lt;", "<")  # not even as visible text of the subject
    [logo] = re.findall(rf'<img src="(/tickets/{ticket.public_id}/attachments/[a-z2-7]{{16}})"', thread)
    assert "Pictures from other websites are hidden" in thread
    assert "page.html" in thread and "vector.svg" in thread and "logo.png" not in thread
    image = await client.get(logo)
    assert image.status == 200 and image.content_type == "image/png"


async def test_remote_pictures_load_only_when_the_contact_asks_for_that_message(
    client: Client, db: Database, settings: Settings, receive_email: ReceiveEmail
) -> None:
    ticket = await ticket_of(db, await receive_email("html-only.eml"))
    [message] = await messages_of(db, ticket.id)
    await signed_in(client, db, settings, await add_contact(db, message.from_email))

    hidden = thread_of(await (await client.get(f"/tickets/{ticket.public_id}")).text())
    shown = thread_of(await (await client.get(f"/tickets/{ticket.public_id}?images={message.public_id}")).text())

    assert "tracker.evil.test" not in hidden and "/static/remote-image.svg" in hidden
    assert f"?images={message.public_id}" in hidden
    assert 'src="https://tracker.evil.test/p.gif"' in shown and "Hide them again" in shown
    assert "<script" not in shown and "onclick" not in shown
