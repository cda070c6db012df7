"""`Harness`: one started gateway on a temporary database, driven the way production drives it.

Mail goes in through `Gateway.receive` (the store the SMTP listener commits through) and
the process's one Processor; outbound mail is delivered by the real outbox worker to an
in-memory sender, so `sent_mail()` returns the messages exactly as they would have left.
A portal client signs in as a person does: a link issued by `wicket link issue`'s code,
its Continue page loaded and its form posted with the page's CSRF token. Webhooks leave
through the real webhook worker: `add_webhook` registers a developer's receiver, and
`webhook_events` registers a capturing receiver of the harness's own (with a route that
pushes every message of the mailbox), verifies each delivery's Standard Webhooks
signature and returns the payloads.

The schema comes from the shipped migrations. On SQLite they run once per test session into
a template file that each test copies, so a test pays a file copy, not a migration.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url
from standardwebhooks.webhooks import Webhook

from gateway.cli import migrate
from gateway.cli.links import issue_operator_link
from gateway.cli.replay import Replayed, header_envelope, outcomes
from gateway.cli.runtime import Gateway
from gateway.directory.mailboxes import add_mailbox
from gateway.inbound.dns import FixedResolver
from gateway.inbound.route_admin import RouteSpec, add_route
from gateway.mail.outlook_mail import as_message
from gateway.models import RouteMatch
from gateway.outbound.webhooks.endpoints import add_endpoint
from gateway.outbound.senders import MemorySender
from gateway.settings import Settings
from gateway.storage.database import open_database
from gateway.tickets.queries import show_ticket

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True, slots=True)
class Received:
    """What became of one received message.

    `outcome` is delivered, duplicate, ignored (a mail loop), bounced (no mailbox) or
    failed; `ticket` is the whole ticket and `message` this message, both as
    `wicket tickets show --json` prints them (None when no ticket was touched).
    """

    inbound_id: int
    outcome: str
    ticket_ref: int | None
    classification: str | None
    rule: str | None
    error: str | None
    ticket: dict[str, Any] | None
    message: dict[str, Any] | None


class Harness:
    """A gateway for one test: `await start()`, use, `await stop()`."""

    def __init__(self, settings: Settings, mailbox: str, mailbox_name: str = "Support") -> None:
        self.settings = settings
        self.mailbox = mailbox
        self.mailbox_name = mailbox_name
        # DNS for the sender checks: fixed answers a test publishes (`harness.resolver.add(name,
        # "TXT", record)`), never the network; unknown names are NXDOMAIN.
        self.resolver = FixedResolver()
        self.gateway = Gateway(settings, resolver=self.resolver)
        self._capture: _Capture | None = None

    @property
    def db(self):  # noqa: ANN201 - the gateway's Database
        return self.gateway.db

    async def start(self, *, migrated: bool = False) -> None:
        """Migrate (unless the database is a copy of a migrated template), add the mailbox, start."""
        if not migrated:
            await migrate.upgrade(self.db)
        await self.db.write(lambda session: add_mailbox(session, self.mailbox, self.mailbox_name))
        await self.gateway.start()

    async def stop(self) -> None:
        if self._capture is not None:
            await self._capture.runner.cleanup()
        await self.gateway.stop()
        await self.db.dispose()

    async def receive(
        self,
        source: str | Path | bytes | EmailMessage,
        *,
        to: str | tuple[str, ...] | None = None,
        mail_from: str | None = None,
        fixtures: Path | None = None,
        peer: str = "local",
        helo: str | None = None,
    ) -> Received:
        """Store `source` as the SMTP listener would, process it, and say what became of it.

        `peer` ("203.0.113.5:41234") and `helo` are the SMTP client's, for the SPF check. An
        Outlook .msg file becomes the message it holds, as `wicket replay` makes it
        (`gateway.mail.outlook.UnreadableItem` when extract-msg cannot read it).
        """
        raw = as_message(_raw(source, fixtures))
        envelope_sender = header_envelope(raw)[0] if mail_from is None else mail_from
        recipients = (to,) if isinstance(to, str) else (to or (self.mailbox,))
        inbound_id = await self.gateway.receive(
            raw, mail_from=envelope_sender, rcpt_tos=recipients, source="test", peer=peer, helo=helo
        )
        await self.gateway.processor.drain()
        (replayed,) = await outcomes(self.gateway, [("", inbound_id)])
        return await self._received(inbound_id, replayed)

    async def _received(self, inbound_id: int, replayed: Replayed) -> Received:
        ticket = message = None
        if replayed.ticket is not None:
            ticket = await show_ticket(self.db, replayed.ticket, self.mailbox)
            ours = [m for m in ticket["messages"] if m["message_id"] == replayed.message_id]
            message = ours[-1] if ours else None
        return Received(
            inbound_id, replayed.outcome, replayed.ticket, replayed.classification, replayed.rule,
            replayed.error, ticket, message,
        )

    async def sent_mail(self) -> list[EmailMessage]:
        """Every message sent so far, in order, after delivering what the outbox holds."""
        await self.gateway.outbox.drain()
        sender = self.gateway.sender
        assert isinstance(sender, MemorySender), "the harness sends to memory (outbound_sender='memory')"
        return [_parsed(mail.raw) for mail in sender.sent]

    async def add_webhook(self, url: str, *, events: tuple[str, ...] = (), push_mail: bool = True) -> str:
        """Send webhook events to `url`; its signing secret (`whsec_…`) for the receiver to verify.

        With `push_mail`, a route pushes every message to the mailbox (`message.received`)
        besides making its ticket, as `wicket routes add plus MAILBOX --webhook ID` does.
        """
        def register(session: Any) -> tuple[str, str]:
            endpoint, secret = add_endpoint(session, self.settings, url, events=list(events))
            if push_mail:
                add_route(session, RouteSpec(RouteMatch.PLUS, self.mailbox, mailbox=self.mailbox, webhook=endpoint.public_id))
            return endpoint.public_id, secret

        _, secret = await self.db.write(register)
        await self.gateway.router.reload()
        return secret

    async def deliver_webhooks(self) -> None:
        """Deliver every webhook event that is due, through the real worker."""
        await self.gateway.webhooks.drain()

    async def capture_webhooks(self) -> None:
        """From now on, every webhook event also goes to the harness's own receiver."""
        if self._capture is None:
            self._capture = await _Capture.start()
            self._capture.verifier = Webhook(await self.add_webhook(self._capture.url))

    async def webhook_events(self) -> list[dict[str, Any]]:
        """Every webhook event since `capture_webhooks`, in delivery order, each signature verified."""
        await self.capture_webhooks()
        await self.deliver_webhooks()
        assert self._capture is not None
        return list(self._capture.payloads)

    async def portal_client(self, email: str, *, ticket: int | None = None) -> TestClient:
        """An HTTP client of the portal, signed in as the contact with `email`."""
        from portal.app import create_app  # only the portal client needs the portal

        app = create_app(self.settings, self.db, processor=self.gateway.processor)
        client: TestClient = TestClient(TestServer(app))
        await client.start_server()
        url = await issue_operator_link(self.db, self.settings, email, ticket)
        path = url[len(self.settings.public_url.rstrip("/")):]
        page = await client.get(path)
        token = _CSRF_FIELD.search(await page.text())
        if token is None:
            await client.close()
            raise RuntimeError(f"the sign-in page for {email} had no form ({page.status})")
        signed_in = await client.post(path, data={"csrf_token": token.group(1)}, allow_redirects=False)
        if signed_in.status not in (302, 303):
            await client.close()
            raise RuntimeError(f"signing in {email} failed ({signed_in.status})")
        return client


def test_settings(directory: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    """Settings for a harness in `directory`: its own SQLite file unless `database_url` is given."""
    values: dict[str, Any] = {
        "database_url": database_url or f"sqlite+aiosqlite:///{directory / 'wicket.db'}",
        "var_dir": directory / "var",
        "secret_keys": ["wicket-pytest-plugin-key"],
        "public_url": "http://portal.wicket.test",
        "smtp_hostname": "mx.wicket.test",
        "outbound_sender": "memory",
        "process_retry_base_seconds": 0,
    }
    return Settings(**{**values, **overrides})


async def migrated_template(directory: Path) -> Path:
    """A migrated, empty SQLite database file in `directory`, for tests to copy."""
    template = directory / "template.db"
    if not template.exists():
        db = open_database(test_settings(directory, f"sqlite+aiosqlite:///{template}"))
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()
    return template


def copy_template(template: Path, settings: Settings) -> None:
    """Put a copy of the migrated template where `settings` keeps its SQLite file."""
    target = Path(make_url(settings.database_url).database or "")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)


def _raw(source: str | Path | bytes | EmailMessage, fixtures: Path | None) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, EmailMessage):
        return source.as_bytes(policy=policy.SMTP)
    path = Path(source)
    if not path.is_file() and fixtures is not None and (fixtures / path).is_file():
        path = fixtures / path
    if not path.is_file():
        raise FileNotFoundError(f"no mail file {source!s}" + (f" (nor in {fixtures})" if fixtures else ""))
    return path.read_bytes()


def _parsed(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


class _Capture:
    """The harness's own webhook receiver on a free port: verifies and keeps every payload."""

    def __init__(self, runner: web.AppRunner, url: str) -> None:
        self.runner = runner
        self.url = url
        self.verifier: Webhook | None = None
        self.payloads: list[dict[str, Any]] = []

    @classmethod
    async def start(cls) -> _Capture:
        app = web.Application()
        runner = web.AppRunner(app, access_log=None)
        capture = cls(runner, "")
        app.router.add_post("/webhooks", capture._receive)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        capture.url = f"http://127.0.0.1:{port}/webhooks"
        return capture

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        assert self.verifier is not None
        payload = self.verifier.verify(body, dict(request.headers))  # raises on a bad signature
        self.payloads.append(payload)
        return web.Response(status=204)
