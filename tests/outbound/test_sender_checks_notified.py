"""Agents see a message's sender verdicts in their notification, with a warning when DMARC failed."""

from __future__ import annotations

from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from tests.inbound.test_sender_verdicts import ALICE, PEER, mail, publish
from tests.mailflow import TOM, add_tom, settle, text_of
from tests.support import ReceiveEmail


async def test_notification_carries_the_sender_checks_and_warns_of_a_dmarc_failure(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver
) -> None:
    await add_tom(gateway)
    publish(resolver, spf="v=spf1 ip4:198.51.100.0/24 -all", dmarc="v=DMARC1; p=reject")
    await receive_email(mail(), mail_from=ALICE, peer=PEER, helo="attacker.test")
    [notification] = (await settle(gateway)).to(TOM)
    text = " ".join(text_of(notification).split())
    assert "Sender checks: SPF fail · DKIM none · DMARC fail (p=reject)" in text
    assert "failed DMARC for its From domain" in text


async def test_notification_of_passing_mail_has_the_line_without_a_warning(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver
) -> None:
    await add_tom(gateway)
    publish(resolver, spf="v=spf1 ip4:192.0.2.0/24 -all", dmarc="v=DMARC1; p=reject")
    await receive_email(mail(), mail_from=ALICE, peer=PEER, helo="mail.customer.test")
    [notification] = (await settle(gateway)).to(TOM)
    text = text_of(notification)
    assert "Sender checks: SPF pass · DKIM none · DMARC pass (p=reject)" in text
    assert "failed DMARC" not in text
