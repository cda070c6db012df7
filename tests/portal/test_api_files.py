"""Files through the agent API: listed on each message, served to the mailbox's agents,
sent with a reply given as a multipart form."""

from __future__ import annotations

import hashlib

from aiohttp import FormData
from aiohttp.test_utils import TestClient

from gateway.cli.runtime import Gateway
from gateway.directory.mailboxes import add_mailbox
from portal.views.api_document import openapi_document
from tests.mailflow import ALICE, settle, text_of
from tests.portal.test_api import api, key_for, only_ticket_url  # noqa: F401  (the fixture and helpers)
from tests.support import ReceiveEmail

PDF = b"%PDF-1.4\n% invoice\n" + b"1" * 500 + b"\n%%EOF\n"


def reply_form(text: str, **files: bytes) -> FormData:
    form = FormData()
    form.add_field("text", text)
    for name, data in files.items():
        form.add_field("attachments", data, filename=name.replace("_", "."), content_type="application/pdf")
    return form


async def test_a_ticket_lists_each_messages_files_and_serves_them_to_agents_of_its_mailbox_only(
    api: TestClient, gateway: Gateway, receive_email: ReceiveEmail  # noqa: F811
) -> None:
    headers = await key_for(gateway)
    await receive_email("attachments-encoded-names.eml")
    url = await only_ticket_url(api, headers)
    ticket = await (await api.get(url, headers=headers)).json()
    files = ticket["messages"][0]["attachments"]
    assert files and {"id", "filename", "content_type", "size", "sha256", "inline", "url"} <= files[0].keys()
    for file in files:
        response = await api.get(file["url"], headers=headers)
        body = await response.read()
        assert response.status == 200 and response.content_type == "application/octet-stream"
        assert (len(body), hashlib.sha256(body).hexdigest()) == (file["size"], file["sha256"])

    await gateway.db.write(lambda session: add_mailbox(session, "billing@example.test", "Billing"))
    outsider = await key_for(gateway, "uma@example.test", ["billing@example.test"])
    refused = await api.get(files[0]["url"], headers=outsider)
    assert refused.status == 404 and (await refused.json())["status"] == 404
    other_ticket = files[0]["url"].replace(url, "/api/v1/tickets/aaaaaaaaaaaaaaaa")
    assert (await api.get(other_ticket, headers=headers)).status == 404, "the file must be on that ticket"


async def test_a_multipart_api_reply_sends_its_files_to_the_customer(
    api: TestClient, gateway: Gateway, receive_email: ReceiveEmail  # noqa: F811
) -> None:
    headers = await key_for(gateway)
    await receive_email("new-request.eml")
    url = f"{await only_ticket_url(api, headers)}/replies"

    response = await api.post(url, data=reply_form("Your invoice is attached.", invoice_pdf=PDF), headers=headers)
    assert response.status == 201
    [listed] = (await response.json())["attachments"]
    assert (listed["filename"], listed["content_type"], listed["size"]) == ("invoice.pdf", "application/pdf", len(PDF))

    [copy] = [m for m in (await settle(gateway)).to(ALICE) if "invoice is attached" in text_of(m)]
    [pdf] = [p for p in copy.message.walk() if p.get_filename() == "invoice.pdf"]
    assert pdf.get_payload(decode=True) == PDF


async def test_an_api_reply_with_a_refused_file_stores_and_sends_nothing(
    api: TestClient, gateway: Gateway, receive_email: ReceiveEmail  # noqa: F811
) -> None:
    headers = await key_for(gateway)
    await receive_email("new-request.eml")
    ticket_url = await only_ticket_url(api, headers)
    url = f"{ticket_url}/replies"
    for form, reason in (
        (reply_form("Run it.", setup_exe=b"MZ"), "cannot be attached"),
        (reply_form("Empty.", empty_pdf=b""), "is empty"),
        (reply_form("   ", invoice_pdf=PDF), "text"),
    ):
        response = await api.post(url, data=form, headers=headers)
        assert response.status == 400 and reason in (await response.json())["error"]
    ticket = await (await api.get(ticket_url, headers=headers)).json()
    assert [m["author_type"] for m in ticket["messages"]] == ["customer"]


def test_the_openapi_document_describes_files() -> None:
    paths = openapi_document()["paths"]
    download = paths["/api/v1/tickets/{ticket_id}/attachments/{attachment_id}"]["get"]
    assert "application/octet-stream" in download["responses"]["200"]["content"]
    reply = paths["/api/v1/tickets/{ticket_id}/replies"]["post"]["requestBody"]["content"]
    assert reply["multipart/form-data"]["schema"]["properties"]["attachments"]["items"]["format"] == "binary"
    assert "attachments" in openapi_document()["components"]["schemas"]["TicketMessage"]["properties"]
