"""The agent API's routes: an agent routes addresses of their own mailbox, and only those."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.directory.mailboxes import add_mailbox
from gateway.outbound.webhooks.endpoints import add_endpoint
from tests.portal.test_api import api, key_for  # noqa: F401 - the fixture
from tests.support import SUPPORT, ReceiveEmail, simple_mail


async def test_an_agent_routes_an_address_of_their_mailbox_and_mail_to_it_makes_tickets(
    api: TestClient, gateway: Gateway, receive_email: ReceiveEmail  # noqa: F811
) -> None:
    headers = await key_for(gateway)
    hook = await gateway.db.write(
        lambda session: add_endpoint(session, gateway.settings, "http://127.0.0.1:9/", events=[])[0].public_id
    )
    body = {"match": "plus", "pattern": "help@example.test", "mailbox": SUPPORT, "webhook": hook, "raw": True}
    created = await api.post("/api/v1/routes", json=body, headers=headers)
    assert created.status == 201, await created.text()
    route = await created.json()
    assert (route["mailbox"], route["webhook"], route["payload_format"]) == (SUPPORT, hook, "raw")
    assert (await (await api.get("/api/v1/routes", headers=headers)).json())["routes"] == [route]
    await gateway.router.reload()
    inbound = await receive_email(simple_mail("Via the new address"), to="help+vip@example.test")
    assert inbound.ticket_id is not None
    removed = await api.delete(f"/api/v1/routes/{route['id']}", headers=headers)
    assert (removed.status, (await removed.json())["id"]) == (200, route["id"])
    assert (await api.delete(f"/api/v1/routes/{route['id']}", headers=headers)).status == 404


async def test_an_agent_cannot_route_other_mailboxes_or_whole_domains(api: TestClient, gateway: Gateway) -> None:  # noqa: F811

    def _change(session: Session):
        add_mailbox(session, "billing@example.test", "Billing")

    await gateway.db.write(_change)
    headers = await key_for(gateway, mailboxes=[SUPPORT])
    refused = [
        {"match": "exact", "pattern": "billing@example.test", "mailbox": SUPPORT},  # another mailbox's address
        {"match": "exact", "pattern": "help@elsewhere.test", "mailbox": SUPPORT},  # another domain
        {"match": "exact", "pattern": "help@example.test", "mailbox": "billing@example.test"},  # not their mailbox
        {"match": "domain", "pattern": "example.test", "mailbox": SUPPORT},  # operator only
    ]
    for body in refused:
        answer = await api.post("/api/v1/routes", json=body, headers=headers)
        assert answer.status in (400, 403), body
    billing = await key_for(gateway, "uma@example.test", ["billing@example.test"])
    body = {"match": "exact", "pattern": "help@example.test", "mailbox": SUPPORT}
    route = await (await api.post("/api/v1/routes", json=body, headers=headers)).json()
    assert (await (await api.get("/api/v1/routes", headers=billing)).json())["routes"] == []
    assert (await api.delete(f"/api/v1/routes/{route['id']}", headers=billing)).status == 404
