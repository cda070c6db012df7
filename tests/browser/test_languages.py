"""The portal in German, French, Spanish and Arabic: right words, right direction, no axe violations.

Each language is asked for by the browser (Accept-Language), so a signed-in customer keeps
it; Arabic pages are right-to-left at desktop and phone width. Screenshots land in
test-output/screenshots/language-<lang>-<page>-<width>.png for people to look at.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.storage.database import orm

import pytest
from playwright.async_api import Browser

from gateway.auth.tokens import LinkPurpose
from gateway.models import Contact, Ticket
from gateway.settings import Settings
from gateway.storage.database import Database
from tests.browser.conftest import accessibility_violations, screenshot
from tests.browser.test_accessibility import WIDTHS, mail_with_attachment
from tests.portal.helpers import issue
from tests.support import ReceiveEmail

pytestmark = [pytest.mark.slow, pytest.mark.browser]
# A word each page must show in the language, so an English page cannot pass.
LANGUAGES = {
    "de": ("Anmelden", "Antwort senden", "Ihre Tickets", "Ihr Konto", "Wie können wir helfen?"),
    "fr": ("Se connecter", "Envoyer la réponse", "Vos tickets", "Votre compte", "Comment pouvons-nous vous aider ?"),
    "es": ("Acceder", "Enviar respuesta", "Sus tickets", "Su cuenta", "¿Cómo podemos ayudarle?"),
    "ar": ("تسجيل الدخول", "إرسال الرد", "تذاكرك", "حسابك", "كيف يمكننا مساعدتك؟"),
}
RUNS = [(language, "desktop") for language in LANGUAGES] + [("ar", "phone")]


@pytest.mark.parametrize(("language", "width"), RUNS)
async def test_the_portal_in_each_language_reads_right_and_passes_axe(
    language: str, width: str, portal: str, browser: Browser, db: Database, live_settings: Settings,
    receive_email: ReceiveEmail,
) -> None:  # fmt: skip
    inbound = await receive_email("new-request.eml")
    await receive_email("reply-gmail.eml")
    await receive_email(mail_with_attachment())
    def _look(session: Session):
        ticket = session.get_one(Ticket, inbound.ticket_id)
        alice = session.get_one(Contact, ticket.requester_id)
        return ticket, alice

    ticket, alice = await db.read(orm(_look))
    context = await browser.new_context(
        viewport=WIDTHS[width], locale=language, extra_http_headers={"Accept-Language": language}  # type: ignore[arg-type]
    )
    page = await context.new_page()
    sign_in, send_reply, tickets, account, help_center = LANGUAGES[language]
    found: dict[str, list[str]] = {}

    async def check(name: str, word: str) -> None:
        await page.wait_for_load_state("load")
        assert await page.locator("html").get_attribute("lang") == language
        assert await page.locator("html").get_attribute("dir") == ("rtl" if language == "ar" else "ltr")
        assert word in await page.locator("body").inner_text(), f"{name}: {word!r} missing"
        await screenshot(page, f"language-{language}-{name}-{width}")
        if violations := await accessibility_violations(page):
            found[name] = violations

    await page.goto(f"{portal}/login")
    await check("login", sign_in)
    issued = await issue(db, live_settings, alice, ticket=ticket, purpose=LinkPurpose.REPLY)
    await page.goto(f"{portal}/l/{issued.token}")
    await page.locator("main form button[type=submit]").click()
    await page.wait_for_url(f"**/tickets/{ticket.public_id}")
    await check("ticket", send_reply)
    await page.goto(f"{portal}/tickets")
    await check("tickets", tickets)
    await page.goto(f"{portal}/account")
    await check("account", account)
    await page.goto(f"{portal}/help")
    await check("help", help_center)
    await context.close()
    assert not found, "\n".join(f"{name}:\n  " + "\n  ".join(rules) for name, rules in found.items())
