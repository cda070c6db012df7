"""The pytest fixtures Wicket ships (entry point `pytest11`: `wicket = gateway.testing.plugin`).

    async def test_a_customer_mail_opens_a_ticket(receive_email, sent_mail):
        received = await receive_email("fixtures/new-request.eml")
        assert received.outcome == "delivered" and received.ticket["status"] == "open"
        assert [m["To"] for m in await sent_mail()] == ["alice@customer.test"]

Fixtures: `wicket` (the `Harness`: settings, database, gateway; `await
wicket.add_webhook(url)` points webhooks at a receiver of your own and returns its secret,
`await wicket.deliver_webhooks()` delivers what is due), `receive_email`, `sent_mail`,
`webhook_events`, `portal_client`. Configure with ini options `wicket_mailbox` (the address
mail goes to, default support@example.test) and `wicket_fixtures` (a folder that relative
mail names are also looked up in), or override the `wicket_settings` fixture (for example
to point `database_url` at PostgreSQL). The async fixtures need pytest-asyncio (or
pytest-aiohttp, which brings it): `pip install wicket[testing]`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the plugin then only explains what to install
    pytest_asyncio = None

DEFAULT_MAILBOX = "support@example.test"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("wicket_mailbox", "Mailbox address the wicket fixtures receive mail for", default=DEFAULT_MAILBOX)
    parser.addini("wicket_fixtures", "Folder that relative mail file names are looked up in", default="")


if pytest_asyncio is None:

    @pytest.fixture
    def wicket() -> None:
        pytest.fail("Wicket's pytest fixtures need pytest-asyncio: pip install 'wicket[testing]'")

else:
    from gateway.settings import Settings
    from gateway.testing.harness import Harness, Received, copy_template, migrated_template, test_settings

    @pytest.fixture(scope="session")
    def wicket_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
        """A migrated empty SQLite database, made once per test session."""
        import asyncio

        return asyncio.run(migrated_template(tmp_path_factory.mktemp("wicket-template")))

    @pytest.fixture
    def wicket_settings(tmp_path: Path) -> Settings:
        """The settings of the test's gateway; override this fixture to change them."""
        return test_settings(tmp_path / "wicket")

    @pytest_asyncio.fixture
    async def wicket(
        wicket_settings: Settings, wicket_template: Path, pytestconfig: pytest.Config
    ) -> AsyncIterator[Harness]:
        """A started gateway on its own database with one mailbox (ini `wicket_mailbox`)."""
        on_sqlite_file = wicket_settings.database_url.startswith("sqlite") and ":memory:" not in wicket_settings.database_url
        if on_sqlite_file:
            copy_template(wicket_template, wicket_settings)
        harness = Harness(wicket_settings, str(pytestconfig.getini("wicket_mailbox")))
        await harness.start(migrated=on_sqlite_file)
        try:
            yield harness
        finally:
            await harness.stop()

    @pytest.fixture
    def receive_email(wicket: Harness, pytestconfig: pytest.Config) -> Callable[..., Awaitable[Received]]:
        """`await receive_email(path | bytes | EmailMessage, to=..., mail_from=...)` -> `Received`;
        an Outlook .msg file is received as the message it holds."""
        folder = str(pytestconfig.getini("wicket_fixtures"))
        fixtures = Path(pytestconfig.rootpath, folder) if folder else None

        async def receive(source: Any, **options: Any) -> Received:
            return await wicket.receive(source, fixtures=fixtures, **options)

        return receive

    @pytest.fixture
    def sent_mail(wicket: Harness) -> Callable[[], Awaitable[list[EmailMessage]]]:
        """`await sent_mail()`: every message the gateway has sent, delivered from its outbox."""
        return wicket.sent_mail

    @pytest_asyncio.fixture
    async def webhook_events(wicket: Harness) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
        """`await webhook_events()`: every webhook event of the test (signatures verified), oldest first."""
        await wicket.capture_webhooks()
        return wicket.webhook_events

    @pytest_asyncio.fixture
    async def portal_client(wicket: Harness) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
        """`client = await portal_client("alice@customer.test")`: an aiohttp client, signed in."""
        clients: list[Any] = []

        async def signed_in(email: str, *, ticket: int | None = None) -> Any:
            client = await wicket.portal_client(email, ticket=ticket)
            clients.append(client)
            return client

        yield signed_in
        for client in clients:
            await client.close()
