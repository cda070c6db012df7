"""Signed webhooks end to end: mail over SMTP, routes, a real receiver, retries, 410, rotation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from datetime import timedelta
from email.message import EmailMessage

import pytest
from pytest_aiohttp import AiohttpClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.inbound.route_admin import RouteSpec, add_route
from gateway.models import RouteMatch, Ticket, TicketStatus, WebhookEndpoint, WebhookEvent, WebhookStatus
from gateway.outbound.webhooks.endpoints import add_endpoint, rotate_secret
from gateway.outbound.webhooks.worker import WebhookWorker, retry_window
from gateway.settings import Settings
from gateway.storage.database import orm
from portal.app import create_app
from portal.views.webhook_schema import PAYLOADS
from tests.outbound.webhook_receiver import Receiver, running
from tests.support import SUPPORT, ReceiveEmail, send, simple_mail


async def endpoint(gateway: Gateway, url: str, events: list[str] | None = None) -> tuple[str, str]:
    """A webhook endpoint: its public id and its secret."""
    def add(session):  # type: ignore[no-untyped-def]
        found, secret = add_endpoint(session, gateway.settings, url, events=events or [])
        return found.public_id, secret

    return await gateway.db.write(add)


async def route(gateway: Gateway, spec: RouteSpec) -> str:
    found = await gateway.db.write(lambda session: add_route(session, spec).public_id)
    await gateway.router.reload()
    return found


async def events(gateway: Gateway) -> list[WebhookEvent]:
    def _look(session: Session):
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))

    return await gateway.db.read(orm(_look))


def retrying_at_once(gateway: Gateway, attempts: int = 35) -> WebhookWorker:
    """The gateway's webhook worker, replaced by one that retries without waiting."""
    quick = gateway.settings.model_copy(update={"webhook_retry_base_seconds": 0.0, "webhook_max_attempts": attempts})
    gateway.webhooks = WebhookWorker(gateway.db, quick)
    return gateway.webhooks


async def settled(gateway: Gateway, timeout: float = 5.0) -> list[WebhookEvent]:
    """The events once none is being posted any more (a receiver answers before the row is settled)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await events(gateway)
        if all(e.status != WebhookStatus.SENDING for e in found):
            return found
        assert time.monotonic() < deadline, "an event stayed in sending"
        await asyncio.sleep(0.05)


def verified(secret: str, body: bytes, headers: dict[str, str]) -> dict:
    """The payload, once its signature checks out and it matches the OpenAPI document's schema."""
    payload = Webhook(secret).verify(body, headers)
    PAYLOADS[payload["type"]].model_validate_json(body)  # extra or missing fields fail
    return payload


async def test_mail_over_smtp_reaches_the_receiver_signed_within_a_second(
    gateway: Gateway, smtp_server: tuple[str, int], resolver: FixedResolver
) -> None:
    resolver.add("customer.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    resolver.add("_dmarc.customer.test", "TXT", "v=DMARC1; p=reject")
    async with running(Receiver()) as receiver:
        hook, secret = await endpoint(gateway, receiver.url, ["ticket.created"])
        await route(gateway, RouteSpec(RouteMatch.PLUS, SUPPORT, webhook=hook))
        gateway.run_processor()
        gateway.run_webhooks()
        code, _ = await send(smtp_server, simple_mail("Printer on fire", "It is smoking."), ["support+billing@example.test"])
        accepted = time.monotonic()
        assert code == 250
        requests = await receiver.wait_for(2, timeout=5)
    by_type = {json.loads(r.body)["type"]: r for r in requests}
    received = by_type["message.received"]
    assert received.at - accepted < 1.0
    payload = verified(secret, received.body, received.headers)
    data = payload["data"]
    assert data["subject"] == "Printer on fire"
    assert data["from"] == {"email": "alice@customer.test", "name": "Alice Doe"}
    assert data["stripped_reply"].strip() == "It is smoking."
    assert data["mailbox_hash"] == "billing"
    assert data["envelope"]["rcpt_to"] == ["support+billing@example.test"]
    assert {"name": "Subject", "value": "Printer on fire"} in data["headers"]
    assert (data["verdicts"]["spf"]["result"], data["verdicts"]["dmarc"]["result"]) == ("pass", "pass")
    [ticket] = data["tickets"]  # the mailbox's own address keeps making tickets
    assert ticket["mailbox"] == SUPPORT and ticket["ref"] == 1001
    created = verified(secret, by_type["ticket.created"].body, by_type["ticket.created"].headers)
    assert created["data"]["ticket"]["id"] == ticket["id"]
    assert received.headers["webhook-id"] != by_type["ticket.created"].headers["webhook-id"]
    assert {e.status for e in await settled(gateway)} == {WebhookStatus.DELIVERED}


async def test_a_receiver_that_is_down_then_up_gets_the_event(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    worker = retrying_at_once(gateway)
    down = Receiver()
    async with running(down) as receiver:
        port = receiver.port
    hook, secret = await endpoint(gateway, f"http://127.0.0.1:{port}/hook")
    await route(gateway, RouteSpec(RouteMatch.EXACT, SUPPORT, webhook=hook))
    await receive_email(simple_mail("Down"))
    assert await worker.deliver_batch() == 2  # ticket.created refused; message.received waits behind it
    first, second = await events(gateway)
    assert (first.status, second.status) == (WebhookStatus.RETRYING, WebhookStatus.PENDING)
    assert "Connect" in (first.last_error or "") and second.attempts == 0
    async with running(Receiver(), port=port) as receiver:
        gateway.run_webhooks()
        requests = await receiver.wait_for(2)
        assert [json.loads(verified(secret, r.body, r.headers) and r.body)["type"] for r in requests] == [
            "ticket.created", "message.received"
        ]
        assert {e.status for e in await settled(gateway)} == {WebhookStatus.DELIVERED}


async def test_500_three_times_then_200_is_retried_until_delivered(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    worker = retrying_at_once(gateway)
    async with running(Receiver(script=[500, 500, 500, 200])) as receiver:
        await endpoint(gateway, receiver.url, ["ticket.created"])
        await receive_email(simple_mail("Flaky"))
        for attempt in range(1, 4):
            assert await worker.deliver_batch() == 1
            [event] = await events(gateway)
            assert (event.status, event.attempts, event.response_status) == (WebhookStatus.RETRYING, attempt, 500)
            assert event.last_error == "HTTP 500: answer 500"
        await worker.drain()
    [event] = await events(gateway)
    assert (event.status, event.attempts, event.response_status) == (WebhookStatus.DELIVERED, 4, 200)
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {event.public_id}  # the same id every time, so the receiver can deduplicate


async def test_410_stops_delivery_and_turns_the_endpoint_off(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    async with running(Receiver(script=[410])) as receiver:
        await endpoint(gateway, receiver.url, ["ticket.created"])
        await receive_email(simple_mail("First"))
        await gateway.webhooks.drain()
        await receive_email(simple_mail("Second"))
        await gateway.webhooks.drain()
    assert len(receiver.requests) == 1
    [event] = await events(gateway)  # nothing more was written for the endpoint
    assert (event.status, event.response_status, event.next_attempt_at) == (WebhookStatus.DEAD, 410, None)

    def _look(session: Session):
        assert (session.scalar(select(WebhookEndpoint.active))) is False

    await gateway.db.read(orm(_look))


async def test_the_last_attempt_dead_letters_the_event_with_the_last_response(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    worker = retrying_at_once(gateway, attempts=2)
    async with running(Receiver(script=[503])) as receiver:
        await endpoint(gateway, receiver.url, ["ticket.created"])
        await receive_email(simple_mail("Never"))
        await worker.drain()
    [event] = await events(gateway)
    assert (event.status, event.attempts, event.response_status) == (WebhookStatus.DEAD, 2, 503)
    assert event.last_error == "HTTP 503: answer 503"


def test_the_default_policy_retries_for_more_than_a_day(settings: Settings, gateway: Gateway) -> None:
    assert retry_window(gateway.webhooks.policy) >= timedelta(hours=24)


async def test_one_tickets_events_arrive_in_order_even_after_a_failure(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    worker = retrying_at_once(gateway)
    async with running(Receiver(script=[500, 200])) as receiver:
        hook, _ = await endpoint(gateway, receiver.url)
        await route(gateway, RouteSpec(RouteMatch.EXACT, SUPPORT, webhook=hook))
        await receive_email(simple_mail("Order"))
        await worker.deliver_batch()  # ticket.created refused; the ticket's next event waits behind it
        assert len(receiver.requests) == 1
        gateway.run_webhooks()
        requests = await receiver.wait_for(3)
    kinds = [json.loads(r.body)["type"] for r in requests]
    assert kinds == ["ticket.created", "ticket.created", "message.received"]


async def test_rotating_the_secret_signs_with_both_until_the_overlap_ends(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    async with running(Receiver()) as receiver:
        hook, old = await endpoint(gateway, receiver.url, ["ticket.created"])
        new = await gateway.db.write(lambda session: rotate_secret(session, settings, hook))
        await receive_email(simple_mail("Rotated"))
        await gateway.webhooks.drain()
    [request] = receiver.requests
    assert new != old
    assert verified(new, request.body, request.headers) == verified(old, request.body, request.headers)
    assert len(request.headers["webhook-signature"].split(" ")) == 2


async def test_a_route_can_ask_for_the_raw_message(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    raw = simple_mail("Raw please")
    async with running(Receiver()) as receiver:
        hook, secret = await endpoint(gateway, receiver.url, ["ticket.assigned"])
        await route(gateway, RouteSpec(RouteMatch.DOMAIN, "example.test", webhook=hook,
                                       payload_format="raw", ticket=False))  # fmt: skip
        inbound = await receive_email(raw, to="anything@example.test")
        await gateway.webhooks.drain()
    [request] = receiver.requests
    assert request.headers["Content-Type"] == "message/rfc822"
    assert request.body == raw
    Webhook(secret).verify(request.body, request.headers, json_parse=False)
    assert inbound.ticket_id is None  # a webhook-only route makes no ticket


async def test_large_attachments_come_as_signed_links_small_ones_inline(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail, aiohttp_client: AiohttpClient
) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "alice@customer.test", SUPPORT, "Files"
    message.set_content("Two files.")
    small, large = b"tiny file", bytes(range(256)) * 1200
    message.add_attachment(small, maintype="text", subtype="plain", filename="small.txt")
    message.add_attachment(large, maintype="application", subtype="octet-stream", filename="large.bin")
    async with running(Receiver()) as receiver:
        hook, secret = await endpoint(gateway, receiver.url, ["ticket.assigned"])
        await route(gateway, RouteSpec(RouteMatch.EXACT, SUPPORT, webhook=hook))
        await receive_email(message.as_bytes())
        await gateway.webhooks.drain()
    [request] = receiver.requests
    files = {a["name"]: a for a in verified(secret, request.body, request.headers)["data"]["attachments"]}
    assert base64.b64decode(files["small.txt"]["content"]) == small
    assert files["large.bin"]["sha256"] == hashlib.sha256(large).hexdigest()
    assert files["large.bin"]["size"] == len(large) and "content" not in files["large.bin"]
    assert files["large.bin"]["url"].startswith(f"{settings.public_url}/webhooks/file?")
    portal = await aiohttp_client(create_app(settings, gateway.db, processor=gateway.processor))
    link = files["large.bin"]["url"].removeprefix(settings.public_url)
    download = await portal.get(link)
    assert (download.status, await download.read()) == (200, large)
    assert download.headers["Content-Disposition"].startswith('attachment; filename="large.bin"')
    assert (await portal.get(link.replace("part=1", "part=0"))).status == 404  # the signature names one file
    assert (await portal.get(link[:-1] + ("0" if link[-1] != "0" else "1"))).status == 404


async def test_a_header_condition_and_stop_choose_the_route(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    async with running(Receiver()) as vip, running(Receiver()) as rest:
        vip_hook, _ = await endpoint(gateway, vip.url, ["ticket.assigned"])
        rest_hook, _ = await endpoint(gateway, rest.url, ["ticket.assigned"])
        await route(gateway, RouteSpec(RouteMatch.EXACT, SUPPORT, header_name="X-Priority-Customer",
                                       header_contains="yes", webhook=vip_hook, priority=10, stop=True))  # fmt: skip
        await route(gateway, RouteSpec(RouteMatch.EXACT, SUPPORT, webhook=rest_hook, priority=20))
        await receive_email(simple_mail("Ordinary"))
        flagged = simple_mail("Important").replace(b"Subject:", b"X-Priority-Customer: YES\nSubject:", 1)
        await receive_email(flagged)
        await gateway.webhooks.drain()
    assert [json.loads(r.body)["data"]["subject"] for r in vip.requests] == ["Important"]
    assert [json.loads(r.body)["data"]["subject"] for r in rest.requests] == ["Ordinary"]


@pytest.mark.parametrize("recipient", ["nobody@example.test", "someone@elsewhere.test"])
async def test_routes_decide_which_recipients_are_accepted_at_rcpt(
    gateway: Gateway, smtp_server: tuple[str, int], recipient: str
) -> None:
    code, _ = await send(smtp_server, simple_mail(), [recipient])
    assert code == 550
    hook, _ = await endpoint(gateway, "http://127.0.0.1:9/hook")
    await route(gateway, RouteSpec(RouteMatch.CATCH_ALL, webhook=hook))
    code, _ = await send(smtp_server, simple_mail(), [recipient])
    # A catch-all covers the domains Wicket receives for, never the rest of the internet.
    assert code == (250 if recipient.endswith("@example.test") else 550)


async def test_status_changes_are_events_written_with_the_change(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    async with running(Receiver()) as receiver:
        _, secret = await endpoint(gateway, receiver.url, ["ticket.status_changed"])
        first = await receive_email(simple_mail("Status"))

        def resolve(session):  # type: ignore[no-untyped-def]
            session.get_one(Ticket, first.ticket_id).status = TicketStatus.RESOLVED

        await gateway.db.write(resolve)
        await receive_email(simple_mail("Re: [#1001] Status"))
        await gateway.webhooks.drain()
    changes = [verified(secret, r.body, r.headers)["data"] for r in receiver.requests]
    assert [(c["previous_status"], c["ticket"]["status"], c["by"]) for c in changes] == [("resolved", "open", None)]


async def test_mail_sent_to_the_customer_is_an_event(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    async with running(Receiver()) as receiver:
        _, secret = await endpoint(gateway, receiver.url, ["message.sent", "delivery.failed"])
        await receive_email(simple_mail("Acknowledge me"))
        await gateway.outbox.drain()  # the automatic acknowledgement
        await gateway.webhooks.drain()
    [request] = receiver.requests
    data = verified(secret, request.body, request.headers)["data"]
    assert (data["email"]["kind"], data["email"]["to"]) == ("acknowledgement", ["alice@customer.test"])
    assert data["ticket"]["ref"] == 1001


async def test_a_new_owner_is_a_ticket_assigned_event(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    from gateway.tickets.commands import Commands
    from gateway.tickets.replies import AgentReply, apply_reply
    from tests.mailflow import add_tom

    async with running(Receiver()) as receiver:
        _, secret = await endpoint(gateway, receiver.url, ["ticket.assigned"])
        first = await receive_email(simple_mail("Who owns this?"))
        tom = await add_tom(gateway)

        def answer(session, commands):  # type: ignore[no-untyped-def]
            ticket = session.get_one(Ticket, first.ticket_id)
            apply_reply(session, gateway.events, ticket, tom, AgentReply("On it.", commands), thread_rule="api")

        await gateway.db.write(lambda session: answer(session, Commands()))  # the first to answer owns it
        await gateway.db.write(lambda session: answer(session, Commands(unassign=True)))
        await gateway.webhooks.drain()
    changes = [verified(secret, r.body, r.headers)["data"] for r in receiver.requests]
    owners = [((c["owner"] or {}).get("email"), (c["previous_owner"] or {}).get("email")) for c in changes]
    assert owners == [("tom@example.test", None), (None, "tom@example.test")]
    assert {c["ticket"]["ref"] for c in changes} == {1001}
