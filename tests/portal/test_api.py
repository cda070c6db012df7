"""The agent JSON API: keys, tickets, replies through the shared path, and its OpenAPI promise."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.directory.agents import add_agent, create_api_key
from gateway.directory.mailboxes import add_mailbox
from gateway.settings import Settings
from gateway.storage.database import open_database
from portal.app import create_app
from portal.views.api_document import openapi_document
from tests.mailflow import ALICE, LINK, TOM, add_tom, settle, text_of
from tests.support import SUPPORT, ReceiveEmail, create_schema, fixture_bytes, portal_app

ClientFactory = Any


@pytest.fixture
async def api(aiohttp_client: ClientFactory, settings: Settings, gateway: Gateway) -> TestClient:
    return await aiohttp_client(create_app(settings, gateway.db, processor=gateway.processor))


async def key_for(gateway: Gateway, email: str = TOM, mailboxes: list[str] | None = None) -> dict[str, str]:
    def change(session: Session):
        agent = add_agent(session, email, email.split("@")[0].title(), mailboxes)
        return {"Authorization": f"Bearer {create_api_key(session, agent.email)}"}

    return await gateway.db.write(change)


async def only_ticket_url(api: TestClient, headers: dict[str, str]) -> str:
    """The API's URL of the one ticket the agent sees."""
    [summary] = (await (await api.get("/api/v1/tickets", headers=headers)).json())["tickets"]
    return f"/api/v1/tickets/{summary['id']}"


async def test_requests_without_a_valid_key_are_refused(api: TestClient, gateway: Gateway) -> None:
    await key_for(gateway)
    for headers in ({}, {"Authorization": "Bearer wk_abcdefgh_nope"}, {"Authorization": "Basic dG9tOng="}):
        response = await api.get("/api/v1/tickets", headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await response.json())["status"] == 401


async def test_agents_list_and_search_the_tickets_of_their_mailboxes(
    api: TestClient, gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    headers = await key_for(gateway)
    await receive_email("new-request.eml")
    await receive_email("same-subject-other-sender.eml")
    await receive_email("html-only.eml")

    everything = await (await api.get("/api/v1/tickets", headers=headers)).json()
    assert [t["ref"] for t in everything["tickets"]] == [1003, 1002, 1001]
    by_words = await (await api.get("/api/v1/tickets", params={"q": "printer"}, headers=headers)).json()
    assert sorted(t["requester"]["email"] for t in by_words["tickets"]) == [ALICE, "bob@example.org"]
    by_number = await (await api.get("/api/v1/tickets", params={"q": "#1001"}, headers=headers)).json()
    assert [t["ref"] for t in by_number["tickets"]] == [1001]
    page = await (await api.get("/api/v1/tickets", params={"limit": "2"}, headers=headers)).json()
    assert (len(page["tickets"]), page["next_offset"]) == (2, 2)
    closed = await (await api.get("/api/v1/tickets", params={"status": "closed"}, headers=headers)).json()
    assert closed["tickets"] == []

    await gateway.db.write(lambda session: add_mailbox(session, "billing@example.test", "Billing"))
    outsider = await key_for(gateway, "uma@example.test", ["billing@example.test"])
    assert (await (await api.get("/api/v1/tickets", headers=outsider)).json())["tickets"] == []


async def test_a_ticket_reads_with_its_messages_and_deliveries(
    api: TestClient, gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    headers = await key_for(gateway)
    await receive_email("new-request.eml")
    await receive_email("reply-gmail.eml")
    await settle(gateway)
    ticket = await (await api.get(await only_ticket_url(api, headers), headers=headers)).json()
    assert [m["thread_rule"] for m in ticket["messages"]] == ["new", "headers"]
    assert ticket["messages"][1]["text"].startswith("Thanks, I tried turning it off and on again.")
    deliveries = {(d["kind"], d["status"]) for d in ticket["deliveries"]}
    assert deliveries == {("acknowledgement", "sent"), ("notification", "sent")}
    assert (await api.get("/api/v1/tickets/aaaaaaaaaaaaaaaa", headers=headers)).status == 404


async def test_a_message_reads_with_its_sender_verdicts_and_a_reply_without(
    api: TestClient, gateway: Gateway, receive_email: ReceiveEmail, resolver: FixedResolver
) -> None:
    headers = await key_for(gateway)
    resolver.add("customer.test", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    resolver.add("_dmarc.customer.test", "TXT", "v=DMARC1; p=quarantine")
    await receive_email("new-request.eml", peer="192.0.2.10:41000", helo="mail.customer.test")
    url = await only_ticket_url(api, headers)
    await api.post(f"{url}/notes", json={"text": "Looking."}, headers=headers)
    first, note = (await (await api.get(url, headers=headers)).json())["messages"]
    assert first["sender_verdicts"] == {
        "spf": {"result": "pass", "domain": "customer.test", "scope": "mailfrom", "reason": "sender SPF authorized"},
        "dkim": [],
        "dmarc": {"result": "pass", "domain": "customer.test", "policy": "quarantine", "aligned": ["spf"]},
        "arc": {"result": "none", "reason": ""},
    }
    assert note["sender_verdicts"] is None
    schemas = openapi_document()["components"]["schemas"]
    assert schemas["TicketMessage"]["properties"]["sender_verdicts"]["anyOf"][0] == {"$ref": "#/components/schemas/SenderVerdicts"}


async def test_an_api_reply_reaches_the_customer_like_an_emailed_one(
    api: TestClient, gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    headers = await key_for(gateway)
    await receive_email("new-request.eml")
    url = await only_ticket_url(api, headers)
    answer = {"text": "A technician is coming.", "status": "pending"}
    response = await api.post(f"{url}/replies", json=answer, headers=headers)
    assert response.status == 201
    reply = await response.json()
    assert (reply["author_type"], reply["thread_rule"], reply["internal"]) == ("agent", "api", False)
    note = await api.post(f"{url}/notes", json={"text": "Second time this week."}, headers=headers)
    assert note.status == 201 and (await note.json())["internal"] is True
    closed = await api.post(f"{url}/status", json={"status": "closed"}, headers=headers)
    assert (await closed.json())["status"] == "closed"

    sender = await settle(gateway)
    answer = sender.to(ALICE)[-1]
    assert "A technician is coming." in text_of(answer) and LINK.search(text_of(answer))
    assert not [m for m in sender.to(ALICE) if "Second time" in text_of(m)]


async def test_requests_that_do_not_match_the_document_are_refused_with_400(
    api: TestClient, gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    headers = await key_for(gateway)
    await receive_email("new-request.eml")
    url = await only_ticket_url(api, headers)
    for body in ({"text": "hi", "cc": "x@evil.test"}, {"text": "  "}, {"text": 5}, {"status": "later"}, []):
        response = await api.post(f"{url}/replies", json=body, headers=headers)
        assert response.status == 400, body
    assert (await api.post(f"{url}/notes", data=b"{not json", headers=headers)).status == 400
    assert (await api.get("/api/v1/tickets", params={"limit": "0"}, headers=headers)).status == 400
    assert (await api.get("/api/v1/tickets", params={"limit": "5.0"}, headers=headers)).status == 400


async def test_contacts_on_the_agents_tickets_are_listed(
    api: TestClient, gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    headers = await key_for(gateway)
    await receive_email("new-request.eml")
    await receive_email("same-subject-other-sender.eml")
    everyone = await (await api.get("/api/v1/contacts", headers=headers)).json()
    assert [c["email"] for c in everyone["contacts"]] == [ALICE, "bob@example.org"]
    bob = await (await api.get("/api/v1/contacts", params={"q": "ROE"}, headers=headers)).json()
    assert [c["email"] for c in bob["contacts"]] == ["bob@example.org"]


async def test_unknown_or_out_of_range_query_parameters_are_refused(api: TestClient, gateway: Gateway) -> None:
    headers = await key_for(gateway)
    for path, reason in (
        ("/api/v1/tickets?colour=red", "colour"),
        ("/api/v1/tickets?limit=0", "limit"),
        ("/api/v1/tickets?status=sleeping", "status"),
        ("/api/v1/contacts?offset=-1", "offset"),
    ):
        response = await api.get(path, headers=headers)
        assert response.status == 400, path
        assert reason in (await response.json())["error"], path


async def test_the_openapi_document_is_served_without_a_key(api: TestClient) -> None:
    response = await api.get("/api/v1/openapi.json")
    assert response.status == 200
    assert (await response.json())["paths"].keys() == openapi_document()["paths"].keys()


# -- schemathesis against a live server --------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveApi:
    base_url: str
    headers: dict[str, str]


async def _seed(settings: Settings, options: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    db = open_database(settings, **options)
    await create_schema(db)
    await db.write(lambda session: add_mailbox(session, SUPPORT, "Example Support"))
    gateway = Gateway(settings, db, resolver=FixedResolver())
    await gateway.start()
    try:
        await add_tom(gateway)
        headers = await key_for(gateway)
        for name in ("new-request.eml", "reply-gmail.eml", "same-subject-other-sender.eml"):
            await gateway.receive(fixture_bytes(name), mail_from=ALICE, rcpt_tos=(SUPPORT,))
        await settle(gateway)
    finally:
        await gateway.stop()
    return db, headers


@pytest.fixture
def live_api(settings: Settings, database_url: tuple[str, dict[str, Any]]) -> Iterator[LiveApi]:
    """The portal on a real port, on its own event loop in a thread (schemathesis is synchronous)."""
    started: list[LiveApi] = []
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        db, headers = await _seed(settings, database_url[1])
        runner = web.AppRunner(portal_app(settings, db))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        started.append(LiveApi(f"http://127.0.0.1:{port}", headers))
        ready.set()
        await stop.wait()
        await runner.cleanup()
        await db.dispose()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(60), "the API server did not start"
    yield started[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    loop.close()


schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.mark.slow
@schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_the_promises_of_its_openapi_document(case: schemathesis.Case, live_api: LiveApi) -> None:
    # Every case carries the key, which masks a negative case's "no Authorization" half;
    # schemathesis 4.32 then blames the server for accepting the other, valid half (its
    # false positive, fixed upstream after 4.32.5). Refusals are asserted by the tests above
    # and by test_unknown_or_out_of_range_query_parameters_are_refused.
    # A reply's files also meet the upload limits (extension, size, count), which the
    # document states in words but cannot express as schema: a multipart reply may get the
    # documented 400 for a file the schema allows. Those refusals are asserted in
    # tests/portal/test_api_files.py.
    excluded = [negative_data_rejection]
    if case.media_type == "multipart/form-data":
        excluded.append(positive_data_acceptance)
    case.call_and_validate(base_url=live_api.base_url, headers=live_api.headers, excluded_checks=excluded)
