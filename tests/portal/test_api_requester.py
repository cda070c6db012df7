"""The agent API on a ticket whose mail named no usable sender: shown as such, replies
refused until an agent names the requester, then answered like any ticket."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.cli.runtime import Gateway
from gateway.settings import Settings
from portal.app import create_app
from portal.views.api_schema import TicketDetail, TicketSummary
from tests.mailflow import settle, text_of
from tests.portal.test_api import key_for
from tests.support import ReceiveEmail

BOB = "bob@customer.test"


@pytest.fixture
async def api(aiohttp_client: Any, settings: Settings, gateway: Gateway) -> TestClient:
    return await aiohttp_client(create_app(settings, gateway.db, processor=gateway.processor))


async def test_a_sender_unclear_ticket_is_shown_and_answered_once_its_requester_is_named(
    api: TestClient, gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    headers = await key_for(gateway)
    await receive_email("sender-unclear.eml")
    [listed] = (await (await api.get("/api/v1/tickets", headers=headers)).json())["tickets"]
    assert (listed["requester"], listed["flag"]) == (None, "sender_unclear")
    assert listed["unclear_from"] == '"Scanner Floor 3" <scanner@@floor3>'
    detail = TicketDetail.model_validate(await (await api.get(f"/api/v1/tickets/{listed['id']}", headers=headers)).json())
    assert detail.requester is None and detail.messages[0].author.email == ""

    base = f"/api/v1/tickets/{listed['id']}"
    refused = await api.post(f"{base}/replies", json={"text": "Which scanner?"}, headers=headers)
    assert refused.status == 400
    assert "has no requester" in (await refused.json())["error"]
    invalid = await api.post(f"{base}/requester", json={"email": "bob@@customer.test"}, headers=headers)
    assert (invalid.status, (await invalid.json())["status"]) == (409, 409)

    named = await api.post(f"{base}/requester", json={"email": BOB, "name": "Bob Roe"}, headers=headers)
    assert named.status == 200
    summary = TicketSummary.model_validate(await named.json())
    assert summary.requester is not None and (summary.requester.email, summary.requester.name) == (BOB, "Bob Roe")
    assert summary.flag is None
    again = await api.post(f"{base}/requester", json={"email": "carol@customer.test"}, headers=headers)
    assert again.status == 409 and "already has a requester" in (await again.json())["error"]

    answered = await api.post(f"{base}/replies", json={"text": "Which scanner?"}, headers=headers)
    assert answered.status == 201
    [reply] = (await settle(gateway)).to(BOB)
    assert "Which scanner?" in text_of(reply)
