"""One relay connection for many emails: kept while it is fresh, replaced when the relay hung up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.cli.runtime import Gateway
from gateway.outbound import senders
from gateway.outbound.outbox import OutboxWorker
from gateway.outbound.senders import PermanentFailure, SmtpSender, TemporaryFailure
from gateway.settings import Settings
from tests.mailflow import new_requests
from tests.outbound.relays import Relay, relay_settings
from tests.support import ReceiveEmail, simple_mail


@pytest.fixture
async def sender(settings: Settings, relay: Relay) -> AsyncIterator[SmtpSender]:
    """A relay sender to the scripted relay; its connection closed at the end."""
    relay_sender = SmtpSender(relay_settings(settings, relay))
    yield relay_sender
    await relay_sender.close()


async def send_to_customers(sender: SmtpSender, count: int) -> None:
    for number in range(count):
        await sender.send("support@example.test", [f"c{number}@customer.test"], simple_mail(f"Email {number}"))


async def test_emails_sent_one_after_another_share_one_relay_connection(relay: Relay, sender: SmtpSender) -> None:
    await send_to_customers(sender, 5)
    await sender.close()
    assert [envelope.rcpt_tos for envelope in relay.received] == [[f"c{n}@customer.test"] for n in range(5)]
    assert len(set(relay.peers)) == 1
    assert relay.logins == [(b"wicket", b"relay-secret")]  # one login for the five
    assert relay.quits == 1


async def test_an_email_the_relay_refuses_leaves_the_connection_to_the_next(relay: Relay, sender: SmtpSender) -> None:
    relay.data_replies = ["554 5.7.1 Message rejected as spam"]
    with pytest.raises(PermanentFailure, match="554"):
        await send_to_customers(sender, 1)
    await send_to_customers(sender, 1)
    assert len(relay.received) == 1
    assert len(relay.peers) == 2 and len(set(relay.peers)) == 1


async def test_a_relay_that_hung_up_gets_the_next_email_on_a_new_connection(relay: Relay, sender: SmtpSender) -> None:
    relay.hang_up = True  # as a relay does with a client idle past its timeout
    for number in range(3):
        await send_to_customers(sender, 1)
        await asyncio.sleep(0.05)  # the relay's close arrives while the connection waits
    assert len(relay.received) == 3
    assert len(set(relay.peers)) == 3


async def test_a_garbled_reply_costs_the_connection_not_the_emails_after_it(relay: Relay, sender: SmtpSender) -> None:
    relay.data_replies = ["Queued!"]  # no reply code: what else the connection holds is unknown
    with pytest.raises(TemporaryFailure):
        await send_to_customers(sender, 1)
    await send_to_customers(sender, 3)
    await sender.close()
    assert len(relay.received) == 3
    assert len(relay.peers) == 4 and len(set(relay.peers)) == 2  # a new connection after the garbled reply


async def test_a_relay_closing_a_kept_connection_with_421_gets_the_email_on_a_new_one(
    relay: Relay, sender: SmtpSender
) -> None:
    relay.mail_replies = ["250 OK", "421 4.7.0 Too many messages on this connection, closing"]
    await send_to_customers(sender, 2)  # the second is refused at MAIL on the kept connection
    await sender.close()
    assert [envelope.rcpt_tos for envelope in relay.received] == [["c0@customer.test"], ["c1@customer.test"]]
    assert len(set(relay.peers)) == 2


async def test_a_connection_cut_after_the_email_went_is_a_temporary_failure_not_a_second_copy(
    relay: Relay, sender: SmtpSender
) -> None:
    await send_to_customers(sender, 1)
    relay.vanish_after_data = True
    with pytest.raises(TemporaryFailure):
        await send_to_customers(sender, 1)  # the outbox tries again after its backoff, as for a new connection
    assert len(relay.received) == 2


async def test_a_close_cancelled_while_it_says_quit_still_closes_the_socket(relay: Relay, sender: SmtpSender) -> None:
    relay.quit_delay = 1.0
    await send_to_customers(sender, 1)
    client = sender._client
    assert client is not None and client.is_connected
    closing = asyncio.ensure_future(sender.close())
    await asyncio.sleep(0.1)
    closing.cancel()
    await asyncio.gather(closing, return_exceptions=True)
    assert not client.is_connected


async def test_a_connection_idle_past_the_limit_is_closed_with_a_quit(
    relay: Relay, sender: SmtpSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(senders, "RELAY_IDLE_SECONDS", 0.05)
    await send_to_customers(sender, 1)
    await asyncio.sleep(0.3)
    assert relay.quits == 1  # said goodbye on its own, not left open
    await send_to_customers(sender, 1)
    assert len(set(relay.peers)) == 2
    await sender.close()


async def test_a_connection_carries_a_bounded_number_of_emails(
    relay: Relay, sender: SmtpSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(senders, "RELAY_EMAILS_PER_CONNECTION", 2)
    await send_to_customers(sender, 5)
    await sender.close()
    assert len(relay.received) == 5
    assert len(set(relay.peers)) == 3


async def test_the_outbox_sends_a_claim_over_one_relay_connection(
    gateway: Gateway, settings: Settings, relay: Relay, receive_email: ReceiveEmail
) -> None:
    await new_requests(receive_email, 6)
    smtp = relay_settings(settings, relay)
    sender = SmtpSender(smtp)
    assert await OutboxWorker(gateway.db, smtp, sender).drain() == 6
    await sender.close()
    assert len(relay.received) == 6
    assert len(set(relay.peers)) == 1


async def test_a_relay_refusing_the_connection_with_5xx_is_a_temporary_failure(settings: Settings) -> None:
    # "554 no relaying for you" in the greeting is about this client and the relay's
    # configuration, not this email: every email would fail alike, so each waits for the
    # operator to fix it, as with wrong credentials (an MTA defers such mail too).
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"554 5.7.1 This relay does not serve your address\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = SmtpSender(relay_settings(settings, Relay(port=port)))
    try:
        with pytest.raises(TemporaryFailure, match="554 5.7.1 This relay does not serve your address"):
            await send_to_customers(sender, 1)
    finally:
        server.close()
        await server.wait_closed()
