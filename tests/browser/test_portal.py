"""The portal in a real Chromium: sign in from a link, read, reply with a file, search, stay safe."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from gateway.auth.tokens import LinkPurpose
from gateway.help.articles import import_articles
from gateway.models import Contact, InboundEmail, Ticket
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.browser.conftest import Watch, screenshot
from tests.portal.helpers import add_contact, issue
from tests.portal.story import agent_replies, messages_of, tom
from tests.support import ReceiveEmail

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTICLES = Path(__file__).resolve().parents[2] / "fixtures" / "articles"
PNG = bytes.fromhex(  # a 1x1 pixel
    "89504e470d0a1a0a0000000d49484452000000010000000108020000009077"
    "53de0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)


async def ticket_of(db: Database, inbound: InboundEmail) -> Ticket:
    return await db.read(orm(lambda session: session.get_one(Ticket, inbound.ticket_id)))


async def sign_in_from_link(page: Page, portal: str, db: Database, settings: Settings, contact: Contact,
                            ticket: Ticket | None = None) -> None:  # fmt: skip
    """Open an emailed link and press Continue, as a person does."""
    issued = await issue(db, settings, contact, ticket=ticket, purpose=LinkPurpose.REPLY)
    await page.goto(f"{portal}/l/{issued.token}")
    await page.get_by_role("button", name="Continue").click()
    await page.wait_for_load_state("networkidle")


@pytest.fixture
async def articles(db: Database) -> None:
    await db.write(lambda session: import_articles(session, ARTICLES))


@pytest.mark.usefixtures("articles")
async def test_a_customer_signs_in_from_a_link_reads_the_thread_and_replies_with_a_file(
    portal: str,
    watched_page: tuple[Page, Watch],
    db: Database,
    live_settings: Settings,
    receive_email: ReceiveEmail,
    tmp_path: Path,
) -> None:
    page, watch = watched_page
    ticket = await ticket_of(db, await receive_email("new-request.eml"))
    await receive_email("reply-gmail.eml")
    await agent_replies(db, live_settings, ticket, await tom(db), "A technician will check tray 2 this afternoon.")
    alice = await add_contact(db, "alice@customer.test")

    await sign_in_from_link(page, portal, db, live_settings, alice, ticket)

    assert page.url == f"{portal}/tickets/{ticket.public_id}"
    await expect(page.get_by_role("heading", level=1)).to_have_text("Printer on floor 3 is jammed")
    await expect(page.get_by_text("A technician will check tray 2")).to_be_visible()
    quoted = page.locator("details.quoted").first
    await expect(quoted).not_to_have_attribute("open", "")
    await screenshot(page, "ticket-page")
    await quoted.locator("summary").click()
    await expect(quoted).to_have_attribute("open", "")

    photo = tmp_path / "tray-2.png"
    photo.write_bytes(PNG)
    await page.get_by_label("Your reply").fill("Thanks! Here is a photo of tray 2.")
    await page.get_by_label("Attach files").set_input_files(str(photo))
    await page.get_by_role("button", name="Send reply").click()
    await page.wait_for_url(f"**/tickets/{ticket.public_id}?notice=sent#latest")

    await expect(page.get_by_role("status")).to_contain_text("Your reply is on the ticket")
    latest = page.locator("#latest")
    await expect(latest).to_contain_text("Thanks! Here is a photo of tray 2.")
    await expect(latest.get_by_role("link", name="tray-2.png")).to_be_visible()
    [*_, reply] = await messages_of(db, ticket.id)
    assert [a.filename for a in reply.attachments] == ["tray-2.png"] and reply.thread_rule == "reply_address"

    await page.goto(f"{portal}/tickets")
    await expect(page.get_by_role("link", name="Printer on floor 3 is jammed")).to_be_visible()
    await expect(page.get_by_text("Articles that may help")).to_be_visible()
    await screenshot(page, "ticket-list")
    await page.set_viewport_size({"width": 390, "height": 844})
    await screenshot(page, "ticket-list-phone")
    await page.goto(f"{portal}/tickets/{ticket.public_id}")
    await screenshot(page, "ticket-page-phone")
    assert watch.quiet(), watch


@pytest.mark.usefixtures("articles")
async def test_a_visitor_searches_the_help_center(portal: str, watched_page: tuple[Page, Watch]) -> None:
    page, watch = watched_page
    await page.goto(f"{portal}/help")
    await screenshot(page, "help-center")

    await page.get_by_role("searchbox", name="Search the help center").fill("paper jams")
    await page.get_by_role("searchbox", name="Search the help center").press("Enter")
    await page.wait_for_url("**/help/search?q=paper+jams")
    await screenshot(page, "help-search")
    await page.get_by_role("link", name="The printer jams or feeds several sheets").click()

    await expect(page.get_by_role("heading", name="Cleaning the pickup roller")).to_be_visible()
    await screenshot(page, "help-article")
    assert watch.quiet(), watch


@pytest.mark.usefixtures("articles")
async def test_a_new_request_suggests_articles_while_typing_and_becomes_a_ticket(
    portal: str, watched_page: tuple[Page, Watch], db: Database, live_settings: Settings
) -> None:
    page, watch = watched_page
    alice = await add_contact(db, "alice@customer.test", "Alice Doe")
    await sign_in_from_link(page, portal, db, live_settings, alice)

    await page.goto(f"{portal}/requests/new")
    await page.get_by_label("Subject").press_sequentially("Where is my invoice", delay=20)
    suggestions = page.locator("#suggested-articles")
    await expect(suggestions.get_by_role("link").first).to_have_text("Where to find your invoices")
    await screenshot(page, "new-request")
    await page.get_by_label("Message").fill("I cannot find the March invoice.")
    await page.get_by_role("button", name="Send request").click()
    await page.wait_for_url("**/tickets/*?notice=created")

    await expect(page.get_by_role("heading", level=1)).to_have_text("Where is my invoice")
    await page.goto(f"{portal}/account")
    await expect(page.get_by_text("Chrome on Linux")).to_have_count(2)  # the device list and the sign-in table
    await screenshot(page, "profile")
    assert watch.quiet(), watch


async def test_an_email_full_of_xss_attempts_runs_nothing_and_loads_nothing_from_elsewhere(
    portal: str, watched_page: tuple[Page, Watch], db: Database, live_settings: Settings, receive_email: ReceiveEmail
) -> None:
    page, watch = watched_page
    ticket = await ticket_of(db, await receive_email("xss-attempts.eml"))
    xavier = await add_contact(db, "xavier@customer.test")
    await sign_in_from_link(page, portal, db, live_settings, xavier, ticket)

    await expect(page.get_by_text("the printer prints blank pages since Monday")).to_be_visible()
    await page.wait_for_load_state("networkidle")
    await page.mouse.move(300, 400)
    await page.keyboard.press("Tab")

    scripts = await page.eval_on_selector_all("script", "nodes => nodes.map(n => n.src)")
    assert scripts == [f"{portal}/static/portal.js?" + scripts[0].split("?", 1)[1]]
    assert await page.locator("iframe, object, embed, form[action*='evil'], svg, math, meta[http-equiv]").count() == 0
    logo = page.get_by_role("img", name="inline logo")
    assert await logo.evaluate("image => image.complete && image.naturalWidth") == 24
    await screenshot(page, "xss-ticket")
    assert watch.quiet(), watch
