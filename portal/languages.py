"""The language and time zone of a portal page.

`page_translator` picks the language with `gateway.i18n.choose_language`: the signed-in
contact's choice, else the browser's Accept-Language, else the mailbox's default. A
signed-in contact who has chosen nothing keeps what their browser asked for, so the mail
Wicket sends them later (which has no browser to ask) speaks the same language.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import update
from sqlalchemy.orm import Session

from gateway.i18n import Translator, choose_language, negotiate, translator
from gateway.models import Contact
from portal import keys
from portal.branding import Brand, brand_for
from portal.sessions import current_contact


def _remember(contact_id: int, language: str):
    def work(session: Session) -> None:
        session.execute(
            update(Contact).where(Contact.id == contact_id, Contact.language.is_(None)).values(language=language)
        )

    return work


async def page_translator(request: web.Request) -> Translator:
    """The translator for this page (worked out once a request)."""
    found = request.get(keys.TRANSLATOR)
    if found is None:
        found = request[keys.TRANSLATOR] = await _chosen(request, await current_contact(request), await brand_for(request))
    return found


async def _chosen(request: web.Request, contact: Contact | None, brand: Brand) -> Translator:
    """The contact's, browser's or mailbox's language, remembering the browser's on a contact without one."""
    asked = request.headers.get("Accept-Language")
    if contact is not None and contact.language is None:
        browser = negotiate(asked)
        if browser is not None:
            await request.app[keys.DB].write(_remember(contact.id, browser))
            contact.language = browser
    language = choose_language(contact.language if contact else None, asked, brand.language)
    return translator(language, contact.time_zone if contact else None)


def visitor_translator(request: web.Request, brand: Brand) -> Translator:
    """A page's translator without the database (error pages): the browser's, else the mailbox's."""
    return translator(choose_language(None, request.headers.get("Accept-Language"), brand.language))
