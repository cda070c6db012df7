"""The portal server for benchmark 3, over a database seeded the way production fills it.

The contact's 20 tickets come from 20 emails stored and processed through the real
`Gateway`. Her portal session and the magic links for the exchange run are written as
rows directly (setting up is not what is measured): the session row holds the SHA-256
of a cookie value only this process knows, and each link holds `token_digest` of a fresh
token, exactly as `issue_link` stores it. The tokens go to a file for wrk's script; the
CSRF cookie and form token are those a visitor's browser would hold. The portal itself is
`portal.app.create_app(settings, db=..., processor=gateway.processor)` on `web.AppRunner`
with the portal's runner options, as `wicket serve` runs it.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from aiohttp import web
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from bench.databases import SUPPORT, fresh_database
from bench.procs import announce
from gateway.auth.link_secrets import code_digest, new_code, new_token, token_digest
from gateway.auth.tokens import LinkPurpose
from gateway.cli.runtime import Gateway
from gateway.models import Contact, MagicLink, PortalSession, utcnow
from gateway.settings import Settings
from gateway.storage.database import Database
from portal import csrf, sessions
from portal.app import create_app, runner_options

CUSTOMER = "alice@customer.test"
TICKETS = 20


def ticket_subject(n: int) -> str:
    return f"Bench ticket number {n:02d}"


async def seed_tickets(gateway: Gateway) -> None:
    for n in range(TICKETS):
        mail = EmailMessage()
        mail["From"] = f"Alice Doe <{CUSTOMER}>"
        mail["To"] = SUPPORT
        mail["Subject"] = ticket_subject(n)
        mail["Message-ID"] = make_msgid(domain="customer.test")
        mail.set_content(f"Question {n}: the invoice total looks wrong.\n")
        await gateway.receive(mail.as_bytes(), mail_from=CUSTOMER, rcpt_tos=(SUPPORT,))
    await gateway.processor.drain()


async def seed_session_and_links(settings: Settings, db: Database, links: int, tokens_file: Path) -> str:
    key, now = settings.keys[0], utcnow()
    session_id = secrets.token_urlsafe(32)
    tokens = [new_token() for _ in range(links)]

    def seed(session: Session) -> None:
        contact = session.scalar(select(Contact).where(Contact.email == CUSTOMER))
        assert contact is not None, "the seeded mail made no contact"
        session.add(
            PortalSession(
                id_hash=sessions.hash_session_id(session_id), contact_id=contact.id, method="link",
                created_at=now, last_seen_at=now, expires_at=now + timedelta(days=1),
            )
        )
        if tokens:
            rows = [
                {
                    "contact_id": contact.id, "purpose": str(LinkPurpose.SIGNIN), "key_id": key.kid,
                    "token_hmac": token_digest(key, token), "code_hmac": code_digest(key, new_code()),
                    "return_path": "/tickets", "code_attempts": 0, "burned": False,
                    "created_at": now, "expires_at": now + timedelta(minutes=60),
                }
                for token in tokens
            ]
            session.execute(insert(MagicLink), rows)

    await db.write(seed)
    tokens_file.write_text("".join(f"{token}\n" for token in tokens))
    return session_id


async def serve_portal(workdir: Path, links: int, stop: asyncio.Event) -> None:
    async with fresh_database("sqlite", workdir) as (settings, db):
        gateway = Gateway(settings, db)
        await gateway.start()
        await seed_tickets(gateway)
        await gateway.stop()  # its tasks only: the portal still processes through its processor
        tokens_file = workdir / "tokens.txt"
        session_id = await seed_session_and_links(settings, db, links, tokens_file)
        seed = secrets.token_urlsafe(32)
        runner = web.AppRunner(create_app(settings, db=db, processor=gateway.processor), **runner_options())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        announce(
            "READY",
            port=runner.addresses[0][1],
            session_cookie=f"{sessions.cookie_name(settings)}={session_id}",
            csrf_cookie=f"{csrf.cookie_name(settings)}={seed}",
            csrf_token=csrf.sign(settings.keys[0], seed, ""),
            tokens_file=str(tokens_file),
            subjects=[ticket_subject(n) for n in range(TICKETS)],
        )
        await stop.wait()
        await runner.cleanup()
        consumed = select(func.count()).where(MagicLink.consumed_at.is_not(None))
        used = await db.read(lambda connection: connection.scalar(consumed))
        announce("DONE", links_used=used)
