"""The team's workflow end to end over real SMTP: two agents, ownership, a colleague copy,
pending and the customer's reply, and the digest that lists the ticket."""

from __future__ import annotations

from datetime import timedelta

from gateway.cli.runtime import Gateway
from gateway.directory.preferences import set_preferences
from gateway.models import TicketStatus, utcnow
from tests.mailflow import ALICE, TOM, build_mail, settle, smtp_send, text_of
from tests.support import SUPPORT, fixture_bytes
from tests.tickets.helpers import ANN, add_agents, ticket


async def test_two_agents_answer_by_mail_and_the_ticket_flows_from_owner_to_digest(
    gateway: Gateway, smtp_server: tuple[str, int]
) -> None:
    await add_agents(gateway, (TOM, "Tom Agent"), (ANN, "Ann Agent"))
    await gateway.db.write(lambda s: set_preferences(s, ANN, daily_digest=True))
    await smtp_send(smtp_server, ALICE, [SUPPORT], fixture_bytes("new-request.eml"))
    sender = await settle(gateway)
    [to_tom], [to_ann] = sender.to(TOM), sender.to(ANN)

    answer = "#status pending\nWhich floor exactly, Alice?\n\nTom\n"
    address = to_tom.message["Reply-To"]
    await smtp_send(smtp_server, TOM, [address], build_mail(
        sender=f"Tom Agent <{TOM}>", to=address, subject=f"Re: {to_tom.message['Subject']}", body=answer,
        in_reply_to=to_tom.message["Message-ID"]))
    sender = await settle(gateway)
    reply = sender.to(ALICE)[-1]
    assert "Which floor exactly" in text_of(reply) and "#status" not in text_of(reply)
    [copy] = sender.to(ANN)[1:]
    assert "Which floor exactly" in text_of(copy) and to_ann.message["Message-ID"] in copy.message["References"]
    assert (await ticket(gateway)).status == TicketStatus.PENDING

    customer_address = reply.message["Reply-To"]
    await smtp_send(smtp_server, ALICE, [customer_address], build_mail(
        sender=f"Alice Doe <{ALICE}>", to=customer_address, subject=f"Re: {reply.message['Subject']}",
        body="The third floor.\n", in_reply_to=reply.message["Message-ID"]))
    await settle(gateway)
    reopened = await ticket(gateway)
    assert reopened.status == TicketStatus.OPEN and reopened.owner_agent_id is not None

    tomorrow = utcnow() + timedelta(days=1, hours=2)
    assert (await gateway.periodic.run_once(tomorrow.replace(hour=max(tomorrow.hour, 8)))).digests == 1
    [digest] = [m for m in (await settle(gateway)).to(ANN) if "daily digest" in m.message["Subject"]]
    text = text_of(digest)
    assert "1 open, 0 unassigned, 1 waiting on the team" in text
    assert "[#1001] Printer on floor 3 is jammed" in text and "Tom Agent" in text
