"""`wicket serve` and `wicket demo`: the commands that run a node, and where the portal joins it.

Both lay out a node's processes (gateway/cli/supervisor.py) and run them
(gateway/cli/serve.py); `demo` first migrates, seeds a demo mailbox with replayed fixture
mail, content and an agent's answers, and prints a sign-in link. This module is the one
place that hands the portal to the gateway (`_start_portal`, importing it only when a node
starts it), so serve.py, like the whole gateway package, never imports the portal.
"""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.cli.supervisor import ROLES
from gateway.cli.support import console, node_settings, on_database

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gateway.settings import Settings
    from gateway.storage.database import Database

DEMO_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "emails"
DEMO_CONTACT = "alice@customer.test"
DEMO_MAIL = ("new-request.eml", "reply-gmail.eml", "reply-outlook.eml", "same-subject-other-sender.eml",
             "html-only.eml", "inline-image.eml", "attachments-encoded-names.eml")


# Imported once by the node's fork server beside the serving code, so a role process forked
# from it starts with them loaded: this module (a child calls `_start_portal`) and the
# portal, named here since the composition root is the only gateway code that knows it.
CHILD_MODULES = (__name__, "portal.app")


def _start_portal(*args: Any, **kwargs: Any) -> Awaitable[Any]:
    from portal.app import start_portal  # the composition root is the only gateway code that knows the portal

    return start_portal(*args, **kwargs)


@click.command()
@click.option("--role", "roles", multiple=True, type=click.Choice(ROLES),
              help="Run only these roles (repeatable), in one process unless --workers says more.")
@click.option("--workers", default=None, type=click.IntRange(1, 64),
              help="N processes, each running the chosen roles, sharing the SMTP and HTTP ports "
                   "(SO_REUSEPORT). Default without --role: SMTP and portal in a process per core, "
                   "processing and outbox in processes of their own.")
@click.pass_obj
def serve(logging_setup: tuple[str, int], roles: tuple[str, ...], workers: int | None) -> None:
    """Run the SMTP listener, processor, outbox worker and portal."""
    import asyncio
    import os

    from gateway.cli.serve import serve as serve_roles
    from gateway.cli.serve import serve_node
    from gateway.cli.supervisor import node_layout, same_roles

    settings = node_settings()
    if not roles and workers is None:
        slots = node_layout(ROLES, os.cpu_count() or 1, sqlite=settings.database_url.startswith("sqlite"))
    elif (workers or 1) > 1:
        slots = same_roles(roles or ROLES, workers or 1)
    else:
        asyncio.run(serve_roles(settings, roles or ROLES, start_portal=_start_portal))
        return
    log_format, log_level = logging_setup
    raise SystemExit(serve_node(settings, slots, start_portal=_start_portal, log_format=log_format,
                                log_level=log_level, preload=CHILD_MODULES))


@click.command()
@click.pass_obj
def demo(logging_setup: tuple[str, int]) -> None:
    """`make run`: migrate, seed a demo mailbox and serve with the dev mail viewer."""
    import asyncio
    import os

    from gateway.cli import migrate
    from gateway.cli.links import issue_operator_link
    from gateway.cli.serve import serve_node
    from gateway.cli.supervisor import node_layout

    settings = node_settings(dev=True)
    asyncio.run(on_database(migrate.upgrade, settings))
    asyncio.run(_seed_demo(settings))
    link = asyncio.run(on_database(lambda database: issue_operator_link(database, settings, DEMO_CONTACT, "1001"),
                                   settings))
    welcome = (
        f"\n[bold]Wicket demo is running[/bold]\n"
        f"  portal:          {settings.public_url}\n"
        f"  sent mail:       {settings.public_url}/_dev/mail\n"
        f"  send a mail:     swaks --server {settings.smtp_host}:{settings.smtp_port} --to support@example.test\n"
        f"  another link:    .venv/bin/wicket link issue {DEMO_CONTACT} --ticket 1001\n"
        f"  sign in as Alice (works once, expires in {settings.reply_link_ttl_minutes} minutes):\n    {link}\n"
    )
    slots = node_layout(ROLES, os.cpu_count() or 1, sqlite=settings.database_url.startswith("sqlite"))
    log_format, log_level = logging_setup
    raise SystemExit(serve_node(settings, slots, start_portal=_start_portal, log_format=log_format,
                                log_level=log_level, preload=CHILD_MODULES,
                                ready=lambda: console().print(welcome, highlight=False, soft_wrap=True)))


async def _seed_demo(settings: Settings) -> None:
    from sqlalchemy import select

    from gateway.cli.demo import seed_demo_content
    from gateway.cli.replay import replay_paths
    from gateway.directory.mailboxes import add_mailbox
    from gateway.models import Ticket

    async def action(database: Database) -> bool:
        def seed(session: Session) -> bool:
            add_mailbox(session, "support@example.test", "Example Support")
            return session.scalar(select(Ticket.id).limit(1)) is None

        return await database.write(seed)

    if await on_database(action, settings):
        await replay_paths(settings, [DEMO_FIXTURES / name for name in DEMO_MAIL], (), False, send_mail=True)
    await on_database(lambda database: seed_demo_content(database, settings), settings)
    await on_database(lambda database: _answer_and_send(database, settings), settings)


async def _answer_and_send(db: Database, settings: Settings) -> None:
    """Tom's answers, and every mail they queue sent now, so no delivery logs bury the banner."""
    from gateway.cli.demo import seed_demo_agent_answers
    from gateway.cli.runtime import Gateway

    gateway = Gateway(settings, db)
    await seed_demo_agent_answers(db, gateway.events)
    try:
        await gateway.outbox.drain()
    finally:
        await gateway.sender.close()
