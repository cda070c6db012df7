"""The help center: imported Markdown articles, open to visitors, searchable, suggested."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gateway.cli import migrate
from gateway.help.articles import ArticleError, import_articles, parse_article, render_markdown
from gateway.help.search import search_articles
from gateway.models import Mailbox
from gateway.models.help import SEARCH_INDEX
from gateway.settings import Settings
from gateway.storage.database import Database, open_database, orm
from tests.portal.helpers import Client, add_contact, add_ticket
from tests.portal.story import elements, signed_in

ARTICLES = Path(__file__).resolve().parents[2] / "fixtures" / "articles"


@pytest.fixture
async def articles(db: Database) -> None:
    await db.write(lambda session: import_articles(session, ARTICLES))


async def search(db: Database, query: str) -> list[str]:
    return [article.slug for article in await db.read(partial(search_articles, query=query))]


def write_article(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.usefixtures("articles")
async def test_visitors_browse_categories_and_read_articles_without_signing_in(client: Client) -> None:
    index = await (await client.get("/help")).text()
    assert "How can we help?" in index
    assert 'href="/help/categories/printers-and-hardware"' in index and "2 articles" in index

    category = await (await client.get("/help/categories/printers-and-hardware")).text()
    assert 'href="/help/articles/printer-jams"' in category and 'href="/help/articles/toner-levels"' in category

    article = await client.get("/help/articles/printer-jams")
    body = await article.text()
    assert article.status == 200
    assert "<h2>Cleaning the pickup roller</h2>" in body and "<table>" in body
    assert 'href="/help/articles/toner-levels"' in body  # more in this category
    assert "Sign in" in body


@pytest.mark.usefixtures("articles")
async def test_unknown_articles_and_categories_are_not_found(client: Client) -> None:
    assert (await client.get("/help/articles/no-such-article")).status == 404
    assert (await client.get("/help/categories/no-such-category")).status == 404


@pytest.mark.usefixtures("articles")
async def test_search_finds_words_in_any_form(db: Database, client: Client) -> None:
    assert await search(db, "printers jamming") == ["printer-jams"]
    assert await search(db, "INVOICE") == ["invoices"]
    assert await search(db, "link expired") == ["signing-in"]
    assert (await search(db, "what if my link expired"))[0] == "signing-in"  # any word, best first
    assert await search(db, "zebra quantum") == []
    assert await search(db, "toner\"*) : -- ' (") == ["toner-levels"]  # query syntax is only punctuation

    page = await (await client.get("/help/search?q=toner")).text()
    assert "1 result for “toner”" in page and 'href="/help/articles/toner-levels"' in page


@pytest.mark.usefixtures("articles")
async def test_suggestions_come_as_json_for_the_new_request_page(client: Client) -> None:
    response = await client.get("/help/suggest", params={"q": "paper jam on page two"})
    data = await response.json()
    assert data["articles"][0] == {
        "title": "The printer jams or feeds several sheets",
        "summary": "Most paper jams come from damp paper, a worn pickup roller or the wrong paper setting.",
        "url": "/help/articles/printer-jams",
    }
    assert (await (await client.get("/help/suggest?q=")).json()) == {"articles": []}


@pytest.mark.usefixtures("articles")
async def test_articles_that_may_help_sit_next_to_the_ticket_list_and_the_new_request_form(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db, "alice@customer.test")
    await add_ticket(db, mailbox, alice, "Where is my invoice for March?")
    await signed_in(client, db, settings, alice)

    listing = await (await client.get("/tickets")).text()
    new_request = await (await client.get("/requests/new")).text()

    aside = listing[listing.index("Articles that may help") :]
    assert aside.index('href="/help/articles/invoices"') < aside.index("</aside>")
    assert "Articles that may help" in new_request and 'data-suggest-url="/help/suggest"' in new_request


async def test_reimporting_updates_articles_and_their_search_entries(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    write_article(folder, "wifi.md", "---\ntitle: Wi-Fi setup\ncategory: Network\n---\nUse the guest network.\n")
    first = await db.write(lambda session: import_articles(session, folder))
    write_article(folder, "wifi.md", "---\ntitle: Wi-Fi setup\ncategory: Network\n---\nUse the office network.\n")
    second = await db.write(lambda session: import_articles(session, folder))

    assert first.created == ["wifi"] and second.updated == ["wifi"]
    assert await search(db, "office") == ["wifi"] and await search(db, "guest") == []


def test_markdown_is_rendered_without_anything_that_runs() -> None:
    html = render_markdown(
        "# Title\n\n<script>alert(1)</script>\n\n[click](javascript:alert(1)) "
        '<img src=x onerror=alert(1)> [ok](https://example.com "t")\n\n![pic](data:image/svg+xml;base64,AAA)'
    )
    tags = elements(html)
    assert {tag for tag, _ in tags} == {"h1", "p", "a"}
    assert [attributes["href"] for tag, attributes in tags if tag == "a"] == ["https://example.com"]
    assert (
        "&lt;script&gt;" in html and '<a href="https://example.com" title="t" rel="noopener noreferrer">ok</a>' in html
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no front matter\n", "no front matter"),
        ("---\ntitle: Only a title\n---\nBody\n", "needs both title and category"),
        ("---\ntitle: [unclosed\n---\nBody\n", "not valid YAML"),
        ("---\ntitle: T\ncategory: C\nslug: Not A Slug\n---\nBody\n", "slug"),
        ("---\ntitle: T\ncategory: C\nposition: first\n---\nBody\n", "position"),
    ],
)
def test_front_matter_mistakes_are_named(text: str, problem: str) -> None:
    with pytest.raises(ArticleError, match=problem):
        parse_article(text, "file")


async def test_an_import_names_the_file_that_failed(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    write_article(folder, "good.md", "---\ntitle: Good\ncategory: C\n---\nFine.\n")
    write_article(folder, "bad.md", "---\ntitle: Bad\n---\nNo category.\n")

    def change(session: Session):
        with pytest.raises(ArticleError, match=r"bad\.md: front matter needs both title and category"):
            import_articles(session, folder)

    await db.write(change)


async def test_the_migrated_schema_searches_too(
    settings: Settings, database_url: tuple[str, dict[str, object]]
) -> None:
    migrated = open_database(settings, **database_url[1])
    try:
        await migrate.upgrade(migrated)
        await migrated.write(lambda session: import_articles(session, ARTICLES))
        assert await search(migrated, "printers jamming") == ["printer-jams"]
        if not migrated.is_sqlite:  # PostgreSQL searches without the index too, only slowly

            def look(session: Session):
                query = "SELECT count(*) FROM pg_indexes WHERE indexname = :name AND schemaname = current_schema()"
                assert session.scalar(text(query), {"name": SEARCH_INDEX}) == 1

            await migrated.read(orm(look))
    finally:
        await migrated.dispose()
