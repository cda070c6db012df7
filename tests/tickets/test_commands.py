"""Agent commands on the first lines of a reply (by mail, `wicket reply`, the API) and ownership."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import TicketPriority, TicketStatus
from gateway.tickets.events import TicketChanged
from tests.mailflow import ALICE, TOM, add_tom, settle, text_of
from tests.support import ReceiveEmail
from tests.tickets.helpers import ANN, add_agents, answer, audit, messages, ticket


def record_changes(gateway: Gateway) -> list[tuple[str, str, str, str]]:
    """Every TicketChanged published on the gateway's bus, as (field, before, after, reason)."""
    seen: list[tuple[str, str, str, str]] = []

    def on_change(_session: Session, event: TicketChanged) -> None:
        seen.append((event.field, event.before, event.after, event.reason))

    gateway.events.subscribe(TicketChanged, on_change)
    return seen


async def test_commands_in_an_emailed_reply_change_the_ticket_and_stay_out_of_the_customers_mail(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await add_agents(gateway, (TOM, "Tom Agent"), (ANN, "Ann Agent"))
    changes = record_changes(gateway)
    await receive_email("new-request.eml")
    [notification] = (await settle(gateway)).to(TOM)
    await answer(receive_email, notification, TOM, "#assign Ann Agent\n#priority HIGH\n#tag billing vip\n\n"
                 "We are on it.\n", name="Tom Agent")
    sender = await settle(gateway)
    changed = await ticket(gateway)
    assert (changed.owner_agent_id is not None, changed.priority, changed.tags) == (True, TicketPriority.HIGH,
                                                                                    ["billing", "vip"])
    reply = text_of(sender.to(ALICE)[-1])
    assert "We are on it." in reply and "#assign" not in reply and "#tag" not in reply
    notes = [m.body_text for m in await messages(gateway) if m.internal]
    assert notes == ["Tom Agent assigned the ticket to Ann Agent.", "Tom Agent changed the priority from normal to high.",
                     "Tom Agent tagged the ticket billing vip."]
    # Tom answered first, so he owned it for a moment; then the command gave it to Ann.
    assert [c[:3] for c in changes] == [("owner", "", TOM), ("owner", TOM, ANN), ("priority", "normal", "high"),
                                        ("tags", "", "billing vip")]
    rows = await audit(gateway)
    assert [event for event, _ in rows] == ["ticket.owner", "ticket.owner", "ticket.priority", "ticket.tags"]
    assert rows[0][1] == {"from": "", "to": TOM, "reason": "first_reply", "agent": TOM}
    assert rows[1][1] == {"from": TOM, "to": ANN, "reason": "agent", "agent": TOM}


async def test_the_first_agent_to_answer_becomes_the_owner_and_a_later_answer_keeps_it(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await add_agents(gateway, (TOM, "Tom Agent"), (ANN, "Ann Agent"))
    await receive_email("new-request.eml")
    sent = await settle(gateway)
    assert (await ticket(gateway)).owner_agent_id is None
    await answer(receive_email, sent.to(ANN)[0], ANN, "Ann here, looking.\n", name="Ann Agent")
    await settle(gateway)
    owner = (await ticket(gateway)).owner_agent_id
    await answer(receive_email, sent.to(TOM)[0], TOM, "Tom adds: try the other tray.\n", name="Tom Agent")
    await settle(gateway)
    assert owner is not None and (await ticket(gateway)).owner_agent_id == owner
    assert [(e, d["to"]) for e, d in await audit(gateway)] == [("ticket.owner", ANN)]


async def test_unknown_commands_are_answered_to_the_agent_and_nothing_reaches_the_customer(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await add_tom(gateway)
    await receive_email("new-request.eml")
    [notification] = (await settle(gateway)).to(TOM)
    await answer(receive_email, notification, TOM, "#asign me\n#priority soon\nThe tray is fixed.\n", name="Tom Agent")
    sender = await settle(gateway)
    assert len(sender.to(ALICE)) == 1, "only the acknowledgement"
    [notice] = sender.to(TOM)[1:]
    told = text_of(notice)
    assert "there is no command '#asign'" in told and "'#priority soon'" in told and "low|normal|high|urgent" in told
    assert "The tray is fixed." in told and "Nothing was sent to the customer" in told
    assert notice.message["Reply-To"] == notification.message["Reply-To"]
    changed = await ticket(gateway)
    assert (changed.owner_agent_id, changed.priority) == (None, TicketPriority.NORMAL)
    assert (await messages(gateway))[-1].internal


async def test_assigning_someone_who_does_not_work_the_mailbox_is_refused_and_told(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await add_tom(gateway)
    await receive_email("new-request.eml")
    [notification] = (await settle(gateway)).to(TOM)
    await answer(receive_email, notification, TOM, "#assign mallory@evil.test\nDone.\n", name="Tom Agent")
    sender = await settle(gateway)
    assert "no agent of this mailbox is 'mallory@evil.test'" in text_of(sender.to(TOM)[-1])
    assert len(sender.to(ALICE)) == 1 and (await ticket(gateway)).owner_agent_id is None


async def test_unassign_and_status_commands_without_text_change_the_ticket_and_mail_no_customer(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await add_tom(gateway)
    await receive_email("new-request.eml")
    [notification] = (await settle(gateway)).to(TOM)
    await answer(receive_email, notification, TOM, "#assign me\n#status pending\n", name="Tom Agent")
    await answer(receive_email, notification, TOM, "#unassign\n", name="Tom Agent")
    sender = await settle(gateway)
    changed = await ticket(gateway)
    assert (changed.owner_agent_id, changed.status) == (None, TicketStatus.PENDING)
    assert len(sender.to(ALICE)) == 1
    assert [e for e, _ in await audit(gateway)] == ["ticket.owner", "ticket.status", "ticket.owner"]
