"""Attachment downloads: only through a ticket the contact may see, never rendered as a page."""

from __future__ import annotations

from gateway.models import Attachment, InboundEmail, Ticket
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.portal.helpers import Client, add_contact, audit_events
from tests.portal.story import messages_of, signed_in
from tests.support import ReceiveEmail


async def ticket_and_files(db: Database, inbound: InboundEmail) -> tuple[Ticket, dict[str, Attachment]]:
    ticket = await db.read(orm(lambda session: session.get_one(Ticket, inbound.ticket_id)))
    files = {a.filename: a for m in await messages_of(db, ticket.id) for a in m.attachments}
    return ticket, files


def url(ticket: Ticket, attachment: Attachment) -> str:
    return f"/tickets/{ticket.public_id}/attachments/{attachment.public_id}"


async def test_files_download_as_attachments_and_images_show_inline(
    client: Client, db: Database, settings: Settings, receive_email: ReceiveEmail
) -> None:
    ticket, files = await ticket_and_files(db, await receive_email("xss-attempts.eml"))
    await signed_in(client, db, settings, await add_contact(db, "xavier@customer.test"))

    page = await client.get(url(ticket, files["page.html"]))
    svg = await client.get(url(ticket, files["vector.svg"]))
    logo = await client.get(url(ticket, files["logo.png"]))

    for download, name in ((page, "page.html"), (svg, "vector.svg")):
        assert download.status == 200
        assert download.content_type == "application/octet-stream"
        assert download.headers["Content-Disposition"].startswith(f'attachment; filename="{name}"')
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in download.headers["Content-Security-Policy"]
    assert logo.content_type == "image/png" and logo.headers["Content-Disposition"].startswith("inline")
    assert (await logo.read()).startswith(b"\x89PNG")
    downloads = await audit_events(db, "attachment.downloaded")
    assert {d.detail["attachment"] for d in downloads} == {files["page.html"].public_id, files["vector.svg"].public_id}


async def test_names_outside_ascii_survive_in_the_download_header(
    client: Client, db: Database, settings: Settings, receive_email: ReceiveEmail
) -> None:
    ticket, files = await ticket_and_files(db, await receive_email("attachments-encoded-names.eml"))
    sender = (await messages_of(db, ticket.id))[0].from_email
    await signed_in(client, db, settings, await add_contact(db, sender))

    response = await client.get(url(ticket, files["Résumé 2026.pdf"]))

    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"R_sum_ 2026.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%202026.pdf"
    )
    assert (await response.read()).startswith(b"%PDF-1.4")


async def test_an_attachment_of_another_ticket_is_not_found(
    client: Client, db: Database, settings: Settings, receive_email: ReceiveEmail
) -> None:
    xss_ticket, xss_files = await ticket_and_files(db, await receive_email("xss-attempts.eml"))
    mine, _ = await ticket_and_files(db, await receive_email("new-request.eml"))
    await signed_in(client, db, settings, await add_contact(db, "alice@customer.test"))

    through_my_ticket = await client.get(url(mine, xss_files["page.html"]))
    through_theirs = await client.get(url(xss_ticket, xss_files["page.html"]))

    assert through_my_ticket.status == through_theirs.status == 404


async def test_attachments_need_a_signed_in_contact(client: Client, db: Database, receive_email: ReceiveEmail) -> None:
    ticket, files = await ticket_and_files(db, await receive_email("xss-attempts.eml"))
    response = await client.get(url(ticket, files["logo.png"]), allow_redirects=False)
    assert response.status == 302 and response.headers["Location"].startswith("/login?next=")
