"""The demo's portal content for `make run`: a brand, help-center articles, a company account.

`seed_demo_content(db, settings)` is idempotent: it brands the first mailbox (name,
colours, footer links), imports the articles under `fixtures/articles`, and creates the
"Customer Test Ltd" account for the customer.test domain with ticket sharing on, so the
demo's customers see each other's tickets. Tickets themselves come from replayed fixture
mail, as in production.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.directory.accounts import add_account
from gateway.directory.branding import set_brand
from gateway.help.articles import ImportSummary, import_articles
from gateway.models import Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database

ARTICLES = Path(__file__).resolve().parents[2] / "fixtures" / "articles"
DEMO_LINKS = (("Service status", "https://status.example.test/"), ("Privacy", "https://example.test/privacy"))


async def seed_demo_content(db: Database, settings: Settings) -> ImportSummary:
    """Brand the first mailbox, load the demo articles and the demo account; returns the import."""

    def seed(session: Session) -> ImportSummary:
        mailbox = session.scalar(select(Mailbox).order_by(Mailbox.id).limit(1))
        if mailbox is not None and not mailbox.brand_name:
            set_brand(
                session, mailbox.address, name=mailbox.name, primary_color="#3b5bdb", accent_color="#0ca678",
                links=(("Help center", f"{settings.public_url}/help"), *DEMO_LINKS),
            )  # fmt: skip
        summary = import_articles(session, ARTICLES)
        add_account(session, "Customer Test Ltd", domains=["customer.test"], share_tickets=True)
        return summary

    return await db.write(seed)
