"""`wicket tickets show/list` mark a ticket whose mail named no usable sender, and
`wicket tickets requester` names its requester."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner, Result

from gateway.cli.main import main
from gateway.cli.runtime import Gateway
from gateway.settings import Settings
from gateway.tickets.queries import list_tickets, show_ticket
from tests.support import ReceiveEmail


async def wicket(settings: Settings, *args: str) -> Result:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the command line opens the database by URL; the PostgreSQL test schema is not in it")
    env = {"WICKET_DATABASE_URL": settings.database_url, "WICKET_VAR_DIR": str(settings.var_dir),
           "WICKET_SECRET_KEYS": json.dumps(settings.secret_keys), "COLUMNS": "300"}  # a table on one line
    # The command runs its own event loop, so it runs on a thread of its own.
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


async def test_the_views_say_the_sender_is_unclear_and_what_from_said(
    receive_email: ReceiveEmail, gateway: Gateway, settings: Settings
) -> None:
    await receive_email("sender-unclear.eml")
    shown = await show_ticket(gateway.db, 1001)
    assert (shown["requester"], shown["flag"]) == (None, "sender_unclear")
    assert shown["unclear_from"] == '"Scanner Floor 3" <scanner@@floor3>'
    [listed] = await list_tickets(gateway.db)
    assert (listed["requester"], listed["unclear_from"]) == (None, shown["unclear_from"])

    result = await wicket(settings, "tickets", "show", "1001")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "flagged sender_unclear" in text
    assert 'requester: none, sender unclear (From: "Scanner Floor 3" <scanner@@floor3>)' in text
    assert "wicket tickets requester 1001 ADDRESS" in text
    listing = await wicket(settings, "tickets", "list")
    assert listing.exit_code == 0, listing.output
    assert "sender unclear" in " ".join(listing.stdout.split())


async def test_tickets_requester_names_the_requester_once(
    receive_email: ReceiveEmail, gateway: Gateway, settings: Settings
) -> None:
    await receive_email("sender-unclear.eml")
    refused = await wicket(settings, "tickets", "requester", "1001", "bob@@customer.test")
    assert refused.exit_code == 1 and "not a valid email address" in refused.output
    named = await wicket(settings, "tickets", "requester", "1001", "Bob@Customer.test", "--name", "Bob Roe")
    assert named.exit_code == 0, named.output
    assert "bob@customer.test is the requester" in named.output
    shown = await show_ticket(gateway.db, 1001)
    assert (shown["requester"], shown["flag"]) == ("bob@customer.test", None)
    assert "The operator named bob@customer.test as the requester" in shown["messages"][-1]["body_text"]
    again = await wicket(settings, "tickets", "requester", "1001", "carol@customer.test")
    assert again.exit_code == 1 and "already has a requester (bob@customer.test)" in again.output
    missing = await wicket(settings, "tickets", "requester", "1009", "carol@customer.test")
    assert missing.exit_code == 1 and "no ticket #1009" in missing.output
