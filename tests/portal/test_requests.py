"""Writing from the portal: new requests and replies take the same path as email."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.mail.parse import parse_email
from gateway.models import InboundEmail, Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from gateway.tickets.reply_address import parse_reply_address
from tests.portal.helpers import Client, MakeClient, add_contact, add_ticket, audit_events, post_form, with_settings
from tests.portal.story import (
    agent_replies,
    messages_of,
    outbox_kinds,
    post_multipart,
    reload,
    signed_in,
    tickets_of,
    tom,
)

ALICE = "alice@customer.test"
PDF = b"%PDF-1.4\n% a tiny test document\n"


async def inbound_rows(db: Database) -> list[InboundEmail]:
    def look(session: Session):
        return list(session.scalars(select(InboundEmail).order_by(InboundEmail.id)).all())

    return await db.read(orm(look))


async def test_a_new_request_becomes_a_ticket_exactly_like_an_email(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    await tom(db)
    alice = await add_contact(db, ALICE, "Alice Doe")
    await signed_in(client, db, settings, alice)

    response = await post_multipart(
        client, "/requests/new", {"subject": "Scanner sends empty PDFs", "message": "Since Monday.\nThanks, Alice"},
        [("scan settings.pdf", PDF)],
    )  # fmt: skip

    assert response.status == 303
    [ticket] = await tickets_of(db, alice)
    assert response.headers["Location"] == f"/tickets/{ticket.public_id}?notice=created"
    assert ticket.subject == "Scanner sends empty PDFs" and ticket.mailbox_id == mailbox.id
    [message] = await messages_of(db, ticket.id)
    assert message.author_contact_id == alice.id and message.thread_rule == "new"
    assert "Since Monday." in message.body_text
    [attachment] = message.attachments
    assert (attachment.filename, attachment.content_type, attachment.data) == (
        "scan settings.pdf",
        "application/pdf",
        PDF,
    )
    [inbound] = await inbound_rows(db)
    assert inbound.source == "portal" and inbound.status == "delivered" and inbound.rcpt_tos == [mailbox.address]
    mail = parse_email(inbound.raw)
    assert mail.sender is not None and mail.sender.email == ALICE and mail.message_id
    kinds = [kind for kind, _ in await outbox_kinds(db)]
    assert "acknowledgement" in kinds and "notification" in kinds  # the customer and Tom, as for email
    [submitted] = await audit_events(db, "request.submitted")
    assert submitted.contact_id == alice.id and submitted.detail == {"inbound_email": inbound.id, "attachments": 1}
    page = await (await client.get(response.headers["Location"])).text()
    assert "Your request is now a ticket" in page and "scan settings.pdf" in page


async def test_a_new_request_needs_a_subject_and_a_message(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db, ALICE)
    await signed_in(client, db, settings, alice)

    no_subject = await post_form(client, "/requests/new", {"subject": " ", "message": "Help"})
    no_message = await post_form(client, "/requests/new", {"subject": "Help", "message": ""})

    assert no_subject.status == no_message.status == 400
    assert "Give your request a subject" in await no_subject.text()
    body = await no_message.text()
    assert "Tell us what you need" in body and 'value="Help"' in body
    assert await inbound_rows(db) == [] and await tickets_of(db, alice) == []


async def test_a_reply_threads_by_the_signed_reply_address_and_notifies_the_agents(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    await tom(db)
    alice = await add_contact(db, ALICE)
    ticket = await add_ticket(db, mailbox, alice, "Printer jams")
    await signed_in(client, db, settings, alice)
    page = f"/tickets/{ticket.public_id}"

    response = await post_multipart(client, f"{page}/reply", {"message": "Photo of the jam attached."},
                                    [("jam.png", b"\x89PNG\r\n\x1a\nnot really")])  # fmt: skip

    assert response.status == 303 and response.headers["Location"] == f"{page}?notice=sent#latest"
    [message] = await messages_of(db, ticket.id)
    assert message.thread_rule == "reply_address" and message.reply_text.strip() == "Photo of the jam attached."
    assert [a.filename for a in message.attachments] == ["jam.png"]
    [inbound] = await inbound_rows(db)
    reply_address = parse_reply_address(inbound.rcpt_tos[0], settings.keys)
    assert reply_address is not None and reply_address.ticket_public_id == ticket.public_id
    assert parse_email(inbound.raw).subject == f"Re: [#{ticket.ref}] Printer jams"
    assert [kind for kind, _ in await outbox_kinds(db)] == ["notification"]
    [replied] = await audit_events(db, "ticket.replied")
    assert replied.ticket_id == ticket.id and replied.detail["attachments"] == 1
    body = await (await client.get(response.headers["Location"])).text()
    assert "Your reply is on the ticket" in body and "Photo of the jam attached." in body


async def test_a_reply_continues_the_email_conversation(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    agent = await tom(db)
    alice = await add_contact(db, ALICE)
    ticket = await add_ticket(db, mailbox, alice)
    await agent_replies(db, settings, ticket, agent, "Which tray?")
    await signed_in(client, db, settings, alice)
    page = f"/tickets/{ticket.public_id}"

    await post_form(client, f"{page}/reply", {"message": "Tray 2."}, page=page)

    [inbound] = await inbound_rows(db)
    sent_to_alice = [kind for kind, to in await outbox_kinds(db) if to == [ALICE]]
    mail = parse_email(inbound.raw)
    assert sent_to_alice == ["agent_reply"]
    assert mail.in_reply_to and mail.in_reply_to[0] in mail.references


async def test_refused_files_keep_what_was_typed_and_say_why(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db, ALICE)
    ticket = await add_ticket(db, mailbox, alice)
    await signed_in(client, db, settings, alice)
    page = f"/tickets/{ticket.public_id}"

    program = await post_multipart(
        client, f"{page}/reply", {"message": "See file"}, [("tool.exe", b"MZ...")], page=page
    )
    empty = await post_multipart(client, f"{page}/reply", {"message": ""}, [], page=page)

    assert program.status == 400
    body = await program.text()
    assert "tool.exe: files of this type cannot be attached" in body and ">See file</textarea>" in body
    assert empty.status == 400 and "Write a reply" in await empty.text()
    assert await inbound_rows(db) == [] and await messages_of(db, ticket.id) == []


async def test_files_over_the_size_and_count_limits_are_refused(
    make_client: MakeClient, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    small = with_settings(settings, portal_attachment_max_bytes=2048, portal_attachment_max_count=2)
    client = await make_client(small)
    alice = await add_contact(db, ALICE)
    await signed_in(client, db, small, alice)

    big = await post_multipart(client, "/requests/new", {"subject": "Logs", "message": "Attached"},
                               [("big.log", b"x" * 4096)])  # fmt: skip
    many = await post_multipart(client, "/requests/new", {"subject": "Logs", "message": "Attached"},
                                [("a.txt", b"a"), ("b.txt", b"b"), ("c.txt", b"c")])  # fmt: skip

    assert big.status == many.status == 400
    assert "big.log is 4.0 KB; each file may be at most 2.0 KB" in await big.text()
    assert "Attach at most 2 files" in await many.text()
    assert await tickets_of(db, alice) == []


async def test_nobody_can_reply_to_a_ticket_they_cannot_see(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db, ALICE)
    ticket = await add_ticket(db, mailbox, alice)
    mallory = await add_contact(db, "mallory@evil.test")
    await signed_in(client, db, settings, mallory)

    response = await post_form(client, f"/tickets/{ticket.public_id}/reply", {"message": "Let me in"}, page="/tickets")

    assert response.status == 404
    assert await inbound_rows(db) == [] and (await reload(db, ticket)).status == "open"


async def test_a_contact_posting_requests_and_replies_too_fast_is_paused_before_any_mail_goes_out(
    make_client: MakeClient, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    await tom(db)
    alice = await add_contact(db, ALICE)
    ticket = await add_ticket(db, mailbox, alice, "Printer jams")
    limited = with_settings(settings, rate_limit_portal_posts_per_contact=2)
    client = await signed_in(await make_client(limited), db, limited, alice)
    page = f"/tickets/{ticket.public_id}"

    first = await post_multipart(client, f"{page}/reply", {"message": "One"})
    second = await post_multipart(client, "/requests/new", {"subject": "Another", "message": "Two"})
    third = await post_multipart(client, f"{page}/reply", {"message": "Three"}, page=page)
    fourth = await post_multipart(client, "/requests/new", {"subject": "Again", "message": "Four"})

    assert (first.status, second.status, third.status, fourth.status) == (303, 303, 429, 429)
    assert "try again in" in (await third.text()).lower()
    assert len(await inbound_rows(db)) == 2
    assert sorted(kind for kind, _ in await outbox_kinds(db)).count("notification") == 2
    other = await signed_in(await make_client(limited), db, limited, await add_contact(db, "bob@customer.test"))
    assert (await post_multipart(other, "/requests/new", {"subject": "Mine", "message": "Bob"})).status == 303
