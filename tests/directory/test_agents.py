"""Agents: membership, replies by email with commands, the CLI reply, API keys."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.cli.team import reply_as_agent
from gateway.directory.agents import (
    AgentError,
    add_agent,
    agent_for_api_key,
    create_api_key,
    remove_agent,
    revoke_api_keys,
)
from gateway.directory.mailboxes import add_mailbox
from gateway.models import (
    AgentApiKey,
    AuthorType,
    MailboxMembership,
    Message,
    Ticket,
    TicketStatus,
)
from gateway.outbound.senders import SentMail
from gateway.settings import Settings
from gateway.storage.database import orm
from gateway.tickets.commands import Commands
from gateway.tickets.replies import AgentReply, read_reply
from tests.mailflow import ALICE, TOM, add_tom, build_mail, settle, text_of
from tests.support import ReceiveEmail


async def notified_ticket(gateway: Gateway, receive_email: ReceiveEmail) -> SentMail:
    await add_tom(gateway)
    await receive_email("new-request.eml")
    [notification] = (await settle(gateway)).to(TOM)
    return notification


async def tom_answers(receive_email: ReceiveEmail, notification: SentMail, body: str, **headers: str) -> None:
    address = notification.message["Reply-To"]
    raw = build_mail(sender=f"Tom Agent <{TOM}>", to=address, subject="Re: printer", body=body,
                     in_reply_to=notification.message["Message-ID"], **headers)
    await receive_email(raw, to=address, mail_from=TOM)


async def ticket_and_messages(gateway: Gateway) -> tuple[Ticket, list[Message]]:
    """Ticket 1001 and every stored message, oldest first."""

    def look(session: Session):
        ticket = session.scalars(select(Ticket).where(Ticket.ref == 1001)).one()
        messages = session.scalars(select(Message).order_by(Message.id)).all()
        return ticket, list(messages)

    return await gateway.db.read(orm(look))


def test_commands_at_the_top_are_read_and_removed() -> None:
    assert read_reply("#internal\n#Status Pending\n\nCalled the customer.") == AgentReply(
        "Called the customer.", Commands(internal=True, status=TicketStatus.PENDING)
    )
    assert read_reply("#1 priority: the tray.") == AgentReply("#1 priority: the tray.")
    [problem] = read_reply("#status later\nsoon").commands.problems
    assert "'#status later'" in problem and "#status open|pending|resolved|closed" in problem


async def test_adding_an_agent_joins_every_mailbox_unless_some_are_named(gateway: Gateway) -> None:
    def change(session: Session):
        add_mailbox(session, "billing@example.test", "Billing")
        everywhere = add_agent(session, "Tom@Example.test", "Tom")
        billing = add_agent(session, "uma@example.test", "Uma", mailboxes=["billing@example.test"])
        with pytest.raises(AgentError):
            add_agent(session, "vic@example.test", mailboxes=["nobody@example.test"])
        rows = session.execute(select(MailboxMembership.agent_id, MailboxMembership.mailbox_id)).all()
        return everywhere, billing, rows

    everywhere, billing, rows = await gateway.db.write(change)
    assert everywhere.email == "tom@example.test"
    assert sorted(agent for agent, _ in rows) == [everywhere.id, everywhere.id, billing.id]


async def test_internal_note_by_email_reaches_no_customer(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    notification = await notified_ticket(gateway, receive_email)
    await tom_answers(receive_email, notification, "#internal\nShe is on the VIP list.\n")
    sender = await settle(gateway)
    ticket, messages = await ticket_and_messages(gateway)
    note = messages[-1]
    assert (note.internal, note.author_type, note.body_text) == (True, AuthorType.AGENT, "She is on the VIP list.")
    assert len(sender.to(ALICE)) == 1  # only the acknowledgement


async def test_status_command_changes_status_and_the_rest_goes_to_the_customer(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    notification = await notified_ticket(gateway, receive_email)
    await tom_answers(receive_email, notification, "#status resolved\nFixed: the tray sensor is replaced.\n")
    sender = await settle(gateway)
    ticket, messages = await ticket_and_messages(gateway)
    assert ticket.status == TicketStatus.RESOLVED
    reply = sender.to(ALICE)[-1]
    assert "Fixed: the tray sensor is replaced." in text_of(reply) and "#status" not in text_of(reply)
    assert [m.body_text for m in messages if m.internal] == ["Tom Agent changed the status from open to resolved."]


async def test_a_command_that_cannot_be_carried_out_sends_nothing(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    notification = await notified_ticket(gateway, receive_email)
    await tom_answers(receive_email, notification, "#status someday\nWe will see.\n")
    sender = await settle(gateway)
    ticket, messages = await ticket_and_messages(gateway)
    assert ticket.status == TicketStatus.OPEN
    assert messages[-1].internal and messages[-1].body_text.startswith("Not sent to the customer: not understood: '#status someday'")
    assert len(sender.to(ALICE)) == 1


async def test_an_agents_out_of_office_answer_becomes_a_note(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    notification = await notified_ticket(gateway, receive_email)
    await tom_answers(receive_email, notification, "I am away until Monday.\n", Auto_Submitted="auto-replied")
    sender = await settle(gateway)
    _, messages = await ticket_and_messages(gateway)
    assert messages[-1].internal and "nothing was sent" in messages[-1].body_text
    assert len(sender.to(ALICE)) == 1


async def test_the_signed_agent_address_with_a_foreign_from_is_a_customer_message(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    notification = await notified_ticket(gateway, receive_email)
    address = notification.message["Reply-To"]
    raw = build_mail(sender="Mallory <mallory@evil.test>", to=address, subject="Re: printer", body="#status closed\n")
    await receive_email(raw, to=address, mail_from="mallory@evil.test")
    ticket, messages = await ticket_and_messages(gateway)
    assert (messages[-1].author_type, messages[-1].from_email) == (AuthorType.CUSTOMER, "mallory@evil.test")
    assert messages[-1].ticket_id != ticket.id and ticket.status == TicketStatus.OPEN


async def test_the_agent_from_with_a_foreign_envelope_sender_is_not_the_agent(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    notification = await notified_ticket(gateway, receive_email)
    address = notification.message["Reply-To"]
    raw = build_mail(sender=f"Tom Agent <{TOM}>", to=address, subject="Re: printer", body="#status closed\n",
                     in_reply_to=notification.message["Message-ID"])
    await receive_email(raw, to=address, mail_from="bounce@evil.test")
    ticket, messages = await ticket_and_messages(gateway)
    assert (messages[-1].author_type, messages[-1].thread_rule) == (AuthorType.CUSTOMER, "headers")
    assert ticket.status == TicketStatus.OPEN


async def test_an_agent_reply_delivered_twice_is_stored_and_sent_once(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    notification = await notified_ticket(gateway, receive_email)
    address = notification.message["Reply-To"]
    raw = build_mail(sender=f"Tom Agent <{TOM}>", to=address, subject="Re: printer", body="On my way.\n")
    await receive_email(raw, to=address, mail_from=TOM)
    await receive_email(raw, to=address, mail_from=TOM)
    sender = await settle(gateway)
    _, messages = await ticket_and_messages(gateway)
    assert [m.body_text for m in messages].count("On my way.") == 1
    assert len(sender.to(ALICE)) == 2  # the acknowledgement and one reply


async def test_reply_from_the_command_line_takes_the_same_path(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    await notified_ticket(gateway, receive_email)

    def change(session: Session):
        reply = AgentReply("Printer fixed.", Commands(status=TicketStatus.RESOLVED))
        message = reply_as_agent(session, gateway.events, 1001, TOM, reply)
        return message

    message = await gateway.db.write(change)
    sender = await settle(gateway)
    ticket, _ = await ticket_and_messages(gateway)
    assert (message.author_type, message.thread_rule, ticket.status) == (AuthorType.AGENT, "cli", TicketStatus.RESOLVED)
    assert "Printer fixed." in text_of(sender.to(ALICE)[-1])

    def change(session: Session):
        with pytest.raises(AgentError, match="no ticket #999"):
            reply_as_agent(session, gateway.events, 999, TOM, AgentReply("Hello"))
        with pytest.raises(AgentError, match="no active agent"):
            reply_as_agent(session, gateway.events, 1001, "mallory@evil.test", AgentReply("Hello"))

    await gateway.db.write(change)


async def test_api_keys_are_stored_hashed_and_identify_their_agent(gateway: Gateway) -> None:
    tom = await add_tom(gateway)
    keys = await gateway.db.write(lambda session: [create_api_key(session, TOM, f"laptop {n}") for n in range(20)])

    def change(session: Session):
        stored = session.scalars(select(AgentApiKey)).all()
        assert all(row.digest not in keys and row.prefix in key for row, key in zip(stored, keys, strict=True))
        for key in keys:
            found = agent_for_api_key(session, key)
            assert found is not None and found.id == tom.id
        assert agent_for_api_key(session, keys[0][:-1] + ("A" if keys[0][-1] != "A" else "B")) is None
        assert agent_for_api_key(session, "not-a-key") is None

    await gateway.db.write(change)


async def test_revoked_api_keys_no_longer_identify_anyone(gateway: Gateway) -> None:
    await add_tom(gateway)

    def change(session: Session):
        key = create_api_key(session, TOM)
        assert revoke_api_keys(session, TOM) == 1
        return key

    key = await gateway.db.write(change)

    def change(session: Session):
        assert agent_for_api_key(session, key) is None

    await gateway.db.write(change)


async def test_a_removed_agent_is_not_notified_and_their_keys_and_replies_are_refused(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await add_tom(gateway)

    def change(session: Session):
        key = create_api_key(session, TOM)
        remove_agent(session, TOM)
        return key

    key = await gateway.db.write(change)

    def look(session: Session):
        assert agent_for_api_key(session, key) is None

    await gateway.db.read(orm(look))
    await receive_email("new-request.eml")
    sender = await settle(gateway)
    assert sender.to(TOM) == [] and sender.to(ALICE), "the customer is acknowledged, the removed agent not told"

    def change(session: Session):
        with pytest.raises(AgentError, match="no active agent"):
            reply_as_agent(session, gateway.events, 1001, TOM, AgentReply("Hello"))
        add_agent(session, TOM, "Tom Agent")

    await gateway.db.write(change)

    def look(session: Session):
        assert agent_for_api_key(session, key) is None, "coming back does not revive old keys"

    await gateway.db.read(orm(look))
