"""Benchmark servers, one per process: `python -m bench.serve KIND [options]`.

`null-smtp` is the SMTP baseline: aiosmtpd's own protocol with a handler that answers
250 and stores nothing. `relay` is an outbound relay for the node to send to: the same
handler behind STARTTLS and AUTH, as a submission port asks, with a certificate for
`localhost` from trustme (its CA written to `--ca`). `wicket-smtp` is Wicket's listener
exactly as `wicket serve` builds it (`Gateway(settings).start()` then `serve_smtp`) over a fresh SQLite file or
PostgreSQL schema, optionally with the processor and outbox worker running too (the
whole serving process, for the memory benchmark) or under pyinstrument. `hello-http` is aiohttp's hello world,
the portal baseline; `portal` is the real portal over a seeded database. Each prints
READY with its port, serves until SIGTERM, then prints DONE with what it counted.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from sqlalchemy import func, select

from bench.databases import fresh_database
from bench.procs import announce
from gateway.cli.runtime import Gateway
from gateway.models import InboundEmail


def _stop_event() -> asyncio.Event:
    """Set on SIGTERM or SIGINT; made before READY, so an early signal is never lost."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


class NullHandler:
    """Accepts every message and keeps nothing: the ceiling for an aiosmtpd-based gateway."""

    def __init__(self) -> None:
        self.accepted = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.accepted += 1
        return "250 2.0.0 OK"


async def null_smtp(options: argparse.Namespace, stop: asyncio.Event) -> None:
    handler = NullHandler()
    connections = 0

    def protocol() -> SMTP:
        nonlocal connections
        connections += 1
        return SMTP(handler, hostname="mx.example.test")

    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0)
    announce("READY", port=server.sockets[0].getsockname()[1])
    await stop.wait()
    server.close()
    announce("DONE", accepted=handler.accepted, connections=connections)


async def relay(options: argparse.Namespace, stop: asyncio.Event) -> None:
    import trustme

    authority = trustme.CA()
    authority.cert_pem.write_to_path(options.ca)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    handler = NullHandler()
    connections = 0

    def protocol() -> SMTP:
        nonlocal connections
        connections += 1
        return SMTP(handler, hostname="relay.example.test", tls_context=context, require_starttls=True,
                    authenticator=lambda *_: AuthResult(success=True), auth_required=True)

    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0)
    announce("READY", port=server.sockets[0].getsockname()[1])
    await stop.wait()
    server.close()
    announce("DONE", accepted=handler.accepted, connections=connections)


async def wicket_smtp(options: argparse.Namespace, stop: asyncio.Event) -> None:
    async with fresh_database(options.db, Path(options.workdir)) as (settings, db):
        gateway = Gateway(settings, db)
        await gateway.start()
        if options.process:
            gateway.run_processor()
            gateway.run_outbox()
        server = await gateway.serve_smtp("127.0.0.1", 0)
        announce("READY", port=server.sockets[0].getsockname()[1], database=db.url.render_as_string())
        if options.profile:
            from pyinstrument import Profiler

            with Profiler(async_mode="disabled") as profiler:
                await stop.wait()
            Path(options.profile).write_text(profiler.output_text(unicode=True))
        else:
            await stop.wait()
        await gateway.stop()
        by_status = select(InboundEmail.status, func.count()).group_by(InboundEmail.status)
        statuses = await db.read(lambda connection: {status: count for status, count in connection.execute(by_status)})
        announce("DONE", stored=sum(statuses.values()), statuses=statuses)


async def hello_http(options: argparse.Namespace, stop: asyncio.Event) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="Hello, world")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    announce("READY", port=runner.addresses[0][1])
    await stop.wait()
    await runner.cleanup()
    announce("DONE")


async def portal(options: argparse.Namespace, stop: asyncio.Event) -> None:
    from bench.portal_seed import serve_portal  # the portal is imported only by this server

    await serve_portal(Path(options.workdir), options.links, stop)


SERVERS: dict[str, Callable[[argparse.Namespace, asyncio.Event], Awaitable[None]]] = {
    "null-smtp": null_smtp,
    "relay": relay,
    "wicket-smtp": wicket_smtp,
    "hello-http": hello_http,
    "portal": portal,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("kind", choices=sorted(SERVERS))
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workdir", default="bench/out/work")
    parser.add_argument("--process", action="store_true", help="also run the processor and outbox worker")
    parser.add_argument("--profile", help="wicket-smtp: write a pyinstrument profile of the serving time here")
    parser.add_argument("--ca", help="relay: write the certificate authority's PEM here")
    parser.add_argument("--links", type=int, default=0, help="portal: magic links to issue for the exchange test")
    options = parser.parse_args()

    async def serve() -> None:
        await SERVERS[options.kind](options, _stop_event())

    asyncio.run(serve())


if __name__ == "__main__":
    main()
