"""Who on the team hears about a ticket (notification policy) and colleague copies of replies."""

from __future__ import annotations

from gateway.cli.runtime import Gateway
from gateway.directory.preferences import set_preferences
from gateway.models import NotifyPolicy
from gateway.outbound.senders import MemorySender
from tests.mailflow import ALICE, TOM, build_mail, settle, text_of
from tests.support import SUPPORT, ReceiveEmail
from tests.tickets.helpers import ANN, BOB, add_agents, answer, outbox_kinds


async def team_with_policies(gateway: Gateway) -> None:
    """Tom hears of everything, Ann of her tickets and unassigned ones, Bob of his own only."""
    await add_agents(gateway, (TOM, "Tom Agent"), (ANN, "Ann Agent"), (BOB, "Bob Agent"))
    await gateway.db.write(lambda s: set_preferences(s, ANN, policy=NotifyPolicy.MINE_AND_UNASSIGNED))
    await gateway.db.write(lambda s: set_preferences(s, BOB, policy=NotifyPolicy.MINE))


def count_to(sender: MemorySender, *addresses: str) -> list[int]:
    return [len(sender.to(address)) for address in addresses]


async def test_each_agent_hears_of_the_tickets_their_policy_follows(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await team_with_policies(gateway)
    await receive_email("new-request.eml")
    sender = await settle(gateway)
    assert count_to(sender, TOM, ANN, BOB) == [1, 1, 0], "a new ticket is unassigned: not Bob's"
    await answer(receive_email, sender.to(ANN)[0], ANN, "#assign Bob Agent\nBob will call you.\n", name="Ann Agent")
    await settle(gateway)
    before = count_to(sender, TOM, ANN, BOB)
    await receive_email("reply-gmail.eml")
    await settle(gateway)
    after = count_to(sender, TOM, ANN, BOB)
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 0, 1], "Bob owns it now; Ann no longer follows"


async def test_when_one_agent_answers_the_colleagues_following_get_a_threaded_copy(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await team_with_policies(gateway)
    await receive_email("new-request.eml")
    sender = await settle(gateway)
    [notification] = sender.to(ANN)
    await answer(receive_email, notification, ANN, "I will replace the tray today.\n", name="Ann Agent")
    await settle(gateway)
    [copy] = sender.to(TOM)[1:]
    assert sender.to(ANN) == [notification] and sender.to(BOB) == [], "not to the one who answered, nor to Bob"
    text = text_of(copy)
    assert "I will replace the tray today." in text and "Ann Agent has answered Alice Doe" in text
    assert copy.message["Subject"].endswith("[#1001] Printer on floor 3 is jammed")
    assert copy.message["In-Reply-To"] and copy.message["In-Reply-To"] in copy.message["References"]
    assert sender.to(TOM)[0].message["Message-ID"] in copy.message["References"], "it threads under Tom's notification"
    assert copy.message["Reply-To"].startswith("support+a.") and copy.message["Reply-To"] != notification.message["Reply-To"]
    assert ("colleague_copy", [TOM]) in await outbox_kinds(gateway)
    customer = sender.to(ALICE)[-1]
    assert "Copy for the team" not in text_of(customer)


async def test_an_internal_note_is_not_copied_to_colleagues(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await add_agents(gateway, (TOM, "Tom Agent"), (ANN, "Ann Agent"))
    await receive_email(build_mail(sender=ALICE, to=SUPPORT, subject="Invoice", body="Where is it?\n"))
    sender = await settle(gateway)
    await answer(receive_email, sender.to(TOM)[0], TOM, "#internal\nAsked billing.\n", name="Tom Agent")
    await settle(gateway)
    assert count_to(sender, TOM, ANN) == [1, 1]
