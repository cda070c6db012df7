"""Every page and state of the portal passes axe-core's WCAG 2.2 AA rules, at desktop and phone width.

Signed out (sign-in, its errors and "check your email", the code page and its error, a new
customer's request form, its errors and its "check your email", "How did we do?" and its
thanks, the help center, a link's Continue page, a used link, a missing page), signed in (the ticket
list, a ticket with attachments and quoted text, a new request and its errors, the
account pages, sign-out), each at 1280 px and at 375 px. A screenshot of every page and
width lands in test-output/screenshots/accessibility-*.png for people to look at.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.tokens import LinkPurpose
from gateway.help.articles import import_articles
from gateway.models import Contact, Ticket, utcnow
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from gateway.tickets.satisfaction import RatingLinks, issue_rating_link
from tests.browser.conftest import accessibility_violations, screenshot
from tests.portal.helpers import issue
from tests.support import SUPPORT, ReceiveEmail

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTICLES = Path(__file__).resolve().parents[2] / "fixtures" / "articles"
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 740}}


class Audit:
    """Runs axe on each page visited and keeps what it found, by page and width."""

    def __init__(self, page: Page, width: str) -> None:
        self.page, self.width = page, width
        self.found: dict[str, list[str]] = {}

    async def check(self, name: str) -> None:
        await self.page.wait_for_load_state("load")
        await screenshot(self.page, f"accessibility-{name}-{self.width}")
        if violations := await accessibility_violations(self.page):
            self.found[f"{name} at {self.width}"] = violations

    async def submit_without_browser_checks(self, form: str) -> None:
        """Send a form as a browser without validation would, so the server's errors show."""
        await self.page.locator(form).evaluate("form => { form.noValidate = true; }")
        async with self.page.expect_navigation():
            await self.page.locator(f"{form} button[type=submit]").first.click()


def rating_link_for(session: Session, settings: Settings, contact: Contact, portal: str) -> RatingLinks:
    """The "How did we do?" link a resolved mail would carry for the contact's first ticket."""
    ticket = session.scalars(select(Ticket).where(Ticket.requester_id == contact.id).order_by(Ticket.id)).first()
    assert ticket is not None
    ticket.resolved_at = utcnow()
    return issue_rating_link(session, settings, ticket, session.get_one(Contact, contact.id), portal)


def mail_with_attachment() -> bytes:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "Alice Doe <alice@customer.test>", SUPPORT, "Re: Printer"
    mail["Message-ID"], mail["In-Reply-To"] = "<photo-1@customer.test>", "<new-request-1@customer.test>"
    mail.set_content("Here is a photo of the tray.\n")
    mail.add_attachment(b"not really a photo", maintype="image", subtype="png", filename="tray 2.png")
    return mail.as_bytes()


async def signed_out_pages(audit: Audit, portal: str, db: Database, settings: Settings, contact: Contact) -> None:
    page = audit.page
    await page.goto(f"{portal}/login")
    await audit.check("login")
    await page.locator("#email").fill("not an address")
    await audit.submit_without_browser_checks("form[action='/login']")
    await audit.check("login-error")
    await page.locator("#email").fill(contact.email)
    await page.get_by_role("button", name="Email me a sign-in link").click()
    await page.wait_for_load_state("networkidle")
    await audit.check("login-sent")
    await page.locator("#code").fill("AAAA-AAAA")
    await page.get_by_role("button", name="Sign in").click()
    await audit.check("code-error")
    await page.goto(f"{portal}/code")
    await audit.check("code")
    for name, path in (("help", "/help"), ("help-search", "/help/search?q=paper+jams"),
                       ("help-category", "/help/categories/printers-and-hardware"),
                       ("help-article", "/help/articles/printer-jams"), ("not-found", "/no/such/page")):  # fmt: skip
        await page.goto(f"{portal}{path}")
        await audit.check(name)
    await page.goto(f"{portal}/requests/start")
    await audit.check("start-request")
    await page.locator("#start-email").fill("new@example.net")
    await audit.submit_without_browser_checks("form[action='/requests/start']")
    await audit.check("start-request-error")
    await page.locator("#start-subject").fill("Printer offline")
    await page.locator("#start-message").fill("It says offline.")
    await page.get_by_role("button", name="Email me a link to confirm").click()
    await audit.check("start-request-sent")
    rating = await db.write(lambda session: rating_link_for(session, settings, contact, portal))
    await page.goto(rating.good_url)
    await audit.check("rating")
    await page.get_by_role("button", name="Good").click()
    await audit.check("rating-done")
    used = await issue(db, settings, contact, purpose=LinkPurpose.SIGNIN)
    await page.goto(f"{portal}/l/{used.token}")
    await audit.check("link-continue")


async def signed_in_pages(audit: Audit, portal: str, db: Database, settings: Settings, contact: Contact,
                          ticket: Ticket) -> None:  # fmt: skip
    page = audit.page
    issued = await issue(db, settings, contact, ticket=ticket, purpose=LinkPurpose.REPLY)
    await page.goto(f"{portal}/l/{issued.token}")
    await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url(f"**/tickets/{ticket.public_id}")
    await audit.check("ticket")
    await page.locator("details.quoted summary").first.click()
    await audit.check("ticket-quoted-open")
    await page.goto(f"{portal}/l/{issued.token}")
    await audit.check("link-used")
    for name, path in (("tickets", "/tickets"), ("new-request", "/requests/new"), ("account", "/account"),
                       ("account-password", "/account/password"), ("not-found-signed-in", "/tickets/nope")):  # fmt: skip
        await page.goto(f"{portal}{path}")
        await audit.check(name)
    await page.goto(f"{portal}/requests/new")
    await audit.submit_without_browser_checks("form[action='/requests/new']")
    await audit.check("new-request-error")
    await page.goto(f"{portal}/logout")
    await audit.check("logout")
    await page.get_by_role("button", name="Sign out").last.click()
    await audit.check("signed-out")


@pytest.mark.parametrize("width", WIDTHS)
async def test_every_page_and_state_passes_axe_at_wcag_2_2_aa(
    width: str, portal: str, browser: Browser, db: Database, live_settings: Settings, receive_email: ReceiveEmail
) -> None:
    def _change(session: Session):
        import_articles(session, ARTICLES)

    await db.write(_change)
    inbound = await receive_email("new-request.eml")
    await receive_email("reply-gmail.eml")  # quotes the request below the reply
    await receive_email(mail_with_attachment())

    def _look(session: Session):
        ticket = session.get_one(Ticket, inbound.ticket_id)
        alice = session.get_one(Contact, ticket.requester_id)
        return ticket, alice

    ticket, alice = await db.read(orm(_look))
    context = await browser.new_context(viewport=WIDTHS[width])  # type: ignore[arg-type]
    audit = Audit(await context.new_page(), width)
    await signed_out_pages(audit, portal, db, live_settings, alice)
    await signed_in_pages(audit, portal, db, live_settings, alice, ticket)
    await context.close()
    found = audit.found
    assert not found, "\n".join(f"{page}:\n  " + "\n  ".join(rules) for page, rules in found.items())
