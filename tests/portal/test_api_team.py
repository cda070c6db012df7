"""The agent API's part in the team workflow: commands in replies, owner and priority, notification settings."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from gateway.cli.runtime import Gateway
from tests.mailflow import ALICE, TOM, settle, text_of
from tests.portal.test_api import api, key_for  # noqa: F401  (the fixture)
from tests.support import SUPPORT, ReceiveEmail


async def test_commands_in_an_api_reply_change_the_ticket_and_the_summary_shows_them(
    api: TestClient, gateway: Gateway, receive_email: ReceiveEmail  # noqa: F811
) -> None:
    headers = await key_for(gateway)
    await receive_email("new-request.eml")
    [ticket] = (await (await api.get("/api/v1/tickets", headers=headers)).json())["tickets"]
    assert (ticket["owner"], ticket["priority"], ticket["tags"]) == (None, "normal", [])
    reply = {"text": "#priority urgent\n#tag printer\nA technician is on the way."}
    posted = await api.post(f"/api/v1/tickets/{ticket['id']}/replies", json=reply, headers=headers)
    assert posted.status == 201 and (await posted.json())["text"] == "A technician is on the way."
    read = await (await api.get(f"/api/v1/tickets/{ticket['id']}", headers=headers)).json()
    assert (read["owner"], read["priority"], read["tags"]) == (TOM, "urgent", ["printer"])
    mail = text_of((await settle(gateway)).to(ALICE)[-1])
    assert "A technician is on the way." in mail and "#priority" not in mail


async def test_a_command_the_api_does_not_understand_is_a_400_that_changes_nothing(
    api: TestClient, gateway: Gateway, receive_email: ReceiveEmail  # noqa: F811
) -> None:
    headers = await key_for(gateway)
    await receive_email("new-request.eml")
    [ticket] = (await (await api.get("/api/v1/tickets", headers=headers)).json())["tickets"]
    refused = await api.post(f"/api/v1/tickets/{ticket['id']}/replies", json={"text": "#urgent\nHello"},
                             headers=headers)
    assert refused.status == 400 and "there is no command '#urgent'" in (await refused.json())["error"]
    read = await (await api.get(f"/api/v1/tickets/{ticket['id']}", headers=headers)).json()
    assert read["owner"] is None and [m["author_type"] for m in read["messages"]] == ["customer"]


async def test_an_agent_reads_and_changes_their_notification_settings(
    api: TestClient, gateway: Gateway  # noqa: F811
) -> None:
    headers = await key_for(gateway)
    shown = await (await api.get("/api/v1/me/notifications", headers=headers)).json()
    assert shown == {"mailboxes": [{"mailbox": SUPPORT, "policy": "all", "daily_digest": False, "digest_hour": 8}]}
    changed = await api.put("/api/v1/me/notifications", json={"policy": "mine", "daily_digest": True}, headers=headers)
    assert changed.status == 200
    assert (await changed.json())["mailboxes"] == [
        {"mailbox": SUPPORT, "policy": "mine", "daily_digest": True, "digest_hour": 8}
    ]
    wrong = await api.put("/api/v1/me/notifications", json={"mailboxes": ["other@example.test"]}, headers=headers)
    assert wrong.status == 404 and "does not work every mailbox" in (await wrong.json())["error"]
    assert (await api.put("/api/v1/me/notifications", json={"policy": "some"}, headers=headers)).status == 400
