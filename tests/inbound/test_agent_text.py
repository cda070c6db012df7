"""An agent's emailed text is never empty and never carries our own notification back.

The replies are built from the notification really sent, quoted the way each client quotes:
Thunderbird and mobile clients that write below the quote (English and German attribution
lines), and a reply with nothing but the quote, which must not reach the customer empty.
"""

from __future__ import annotations

from gateway.cli.runtime import Gateway
from gateway.outbound.senders import SentMail
from tests.mailflow import ALICE, TOM, add_tom, settle, text_of
from tests.support import ReceiveEmail
from tests.tickets.helpers import answer, messages


def quoted(notification: SentMail) -> str:
    return "\n".join(f"> {line}".rstrip() for line in text_of(notification).splitlines())


async def notified(gateway: Gateway, receive_email: ReceiveEmail) -> SentMail:
    await add_tom(gateway)
    await receive_email("new-request.eml")
    [notification] = (await settle(gateway)).to(TOM)
    return notification


async def test_a_reply_written_below_the_quote_reaches_the_customer_without_the_quote(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    notification = await notified(gateway, receive_email)
    body = (f"On 06/12/2026 07:00, Alice Doe via Example Support wrote:\n{quoted(notification)}\n\n"
            "We replaced the tray; it prints again.\n\nTom\n")
    await answer(receive_email, notification, TOM, body, name="Tom Agent")
    reply = text_of((await settle(gateway)).to(ALICE)[-1])
    assert "We replaced the tray; it prints again." in reply and "Tom" in reply
    for leaked in ("wrote:", "Please type your reply", "Reply to this email to answer", "New ticket [#1001]"):
        assert leaked not in reply


async def test_a_german_bottom_posted_reply_from_a_phone_keeps_only_the_agents_words(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    notification = await notified(gateway, receive_email)
    body = (f"Am 06.12.2026 um 07:00 schrieb Alice Doe via Example Support <support@example.test>:\n\n"
            f"{quoted(notification)}\n\nDer Drucker läuft wieder.\n\nVon meinem iPhone gesendet\n")
    await answer(receive_email, notification, TOM, body, name="Tom Agent")
    stored = [m for m in await messages(gateway) if m.author_type == "agent" and not m.internal]
    assert [m.body_text for m in stored] == ["Der Drucker läuft wieder.\n\nVon meinem iPhone gesendet"]


async def test_a_reply_with_nothing_but_the_quote_is_not_sent_and_the_agent_is_told(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    notification = await notified(gateway, receive_email)
    body = f"On 06/12/2026 07:00, Alice Doe via Example Support wrote:\n{quoted(notification)}\n"
    await answer(receive_email, notification, TOM, body, name="Tom Agent")
    sender = await settle(gateway)
    assert len(sender.to(ALICE)) == 1, "only the acknowledgement"
    told = text_of(sender.to(TOM)[-1])
    assert "Not sent to the customer: nothing to do" in told
    assert (await messages(gateway))[-1].internal
