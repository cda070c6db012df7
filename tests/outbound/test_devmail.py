"""The dev mail viewer: what the maildir sender delivered, with the magic links clickable."""

from __future__ import annotations

from typing import Any

from gateway.cli.runtime import Gateway
from gateway.outbound.outbox import OutboxWorker
from gateway.outbound.senders import MaildirSender
from gateway.settings import Settings
from portal.app import create_app
from tests.mailflow import LINK
from tests.support import ReceiveEmail, portal_app


async def test_dev_mail_lists_delivered_mail_with_its_magic_link(
    aiohttp_client: Any, settings: Settings, gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    dev = Settings(**{**settings.model_dump(), "dev": True})
    await receive_email("new-request.eml")
    await OutboxWorker(gateway.db, dev, MaildirSender(dev.maildir_dir)).drain()
    portal = await aiohttp_client(portal_app(dev, gateway.db))

    listing = await portal.get("/_dev/mail")
    page = await listing.text()
    assert listing.status == 200
    assert "Re: [#1001] Printer on floor 3 is jammed" in page
    link = LINK.search(page)
    assert link is not None and f'<a href="{link.group(0)}">View this ticket</a>' in page

    detail_path = page.split('href="/_dev/mail/', 1)[1].split('"', 1)[0]
    detail = await (await portal.get(f"/_dev/mail/{detail_path}")).text()
    assert f'<a href="{link.group(0)}">{link.group(0)}</a>' in detail
    assert "alice@customer.test" in detail
    assert (await portal.get("/_dev/mail/no-such-message")).status == 404


async def test_dev_mail_does_not_exist_outside_development(
    aiohttp_client: Any, settings: Settings, gateway: Gateway
) -> None:
    portal = await aiohttp_client(create_app(settings, gateway.db, processor=gateway.processor))
    assert (await portal.get("/_dev/mail")).status == 404
