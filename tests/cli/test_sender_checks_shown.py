"""`wicket tickets show` (and --json) shows each inbound message's sender verdicts."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from gateway.cli.main import main
from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.settings import Settings
from gateway.tickets.queries import show_ticket
from tests.inbound.test_sender_verdicts import ALICE, PEER, mail, publish
from tests.support import ReceiveEmail


async def test_tickets_show_lists_the_verdicts_and_the_flag(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver, settings: Settings
) -> None:
    publish(resolver, spf="v=spf1 ip4:198.51.100.0/24 -all", dmarc="v=DMARC1; p=reject")
    await receive_email(mail(), mail_from=ALICE, peer=PEER, helo="attacker.test")
    shown = await show_ticket(gateway.db, 1001)
    assert shown["flag"] == "dmarc_fail"
    [message] = shown["messages"]
    assert message["sender_verdicts"]["spf"]["result"] == "fail"
    assert message["sender_verdicts"]["dmarc"] == {
        "result": "fail", "domain": "customer.test", "policy": "reject", "aligned": []
    }
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the command line opens the database by URL; the PostgreSQL test schema is not in it")
    env = {"WICKET_DATABASE_URL": settings.database_url, "WICKET_VAR_DIR": str(settings.var_dir),
           "WICKET_SECRET_KEYS": json.dumps(settings.secret_keys)}
    # The command runs its own event loop, so it runs on a thread of its own.
    result = await asyncio.to_thread(CliRunner().invoke, main, ["tickets", "show", "1001"], env=env)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "flagged dmarc_fail" in text
    assert "sender checks: SPF fail · DKIM none · DMARC fail (p=reject)" in text
