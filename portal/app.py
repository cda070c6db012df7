"""The portal application factory, and how `wicket serve` runs it.

`create_app(settings, db, processor=...)` builds a fresh `web.Application`: settings, the
node's one `Processor` (built by the composition root, `gateway.cli.runtime.Gateway`, and
handed in: the portal never builds its own; docs/architecture.md, "The portal") and the
brand and suggestion caches under typed keys, the database in a cleanup context (opened
from settings unless a `Database` is handed in, and then left for its owner to dispose),
templates, middlewares, the response hook that adds security headers and cookies, and the
URL table from `portal.routes`. Nothing is created at import time. `start_portal` runs it
on a TCP site with `RedactingAccessLogger`, which keeps magic-link tokens and SSO tokens
out of the access log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web, web_response
from aiohttp.abc import AbstractAccessLogger
from sqlalchemy.orm import configure_mappers

from gateway.inbound.processor import Processor
from gateway.settings import Settings
from gateway.storage.database import Database, open_database
from portal import keys
from portal.branding import BrandCache
from portal.client_address import untrusted_forwarding_warning
from portal.csrf import csrf_middleware
from portal.middlewares import SERVER, error_pages, form_bodies, on_prepare
from portal.routes import setup_routes
from portal.suggestions import SuggestionCache
from portal.templating import setup_templates
from portal.views.ops import observe_requests

_SECRET_PATH = re.compile(r"(/l/|/agent/files/)[^/?#\s]+")
_SECRET_QUERY = re.compile(r"([?&](?:jwt|token|code)=)[^&#\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    """A URL or path with magic-link and download tokens and token-like query values blanked out."""
    return _SECRET_QUERY.sub(r"\1[redacted]", _SECRET_PATH.sub(r"\1[redacted]", text))


class RedactingAccessLogger(AbstractAccessLogger):
    """Access log lines like aiohttp's, with secrets in paths and queries removed."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %s %.3fs "%s"',
            request.remote,
            request.method,
            redact(request.path_qs),
            response.status,
            response.body_length,
            time,
            request.headers.get("User-Agent", "-"),
        )


def runner_options() -> dict[str, Any]:
    """Options for `web.AppRunner` (and the test server) that every portal runner uses."""
    return {"access_log_class": RedactingAccessLogger}


def _database_context(settings: Settings, given: Database | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def database(app: web.Application) -> AsyncIterator[None]:
        db = given if given is not None else open_database(settings)
        app[keys.DB] = db
        yield
        if given is None:
            await db.dispose()

    return database


def create_app(settings: Settings, db: Database | None = None, *, processor: Processor) -> web.Application:
    """A new portal application for `settings` (and an existing `db`, if given).

    `processor` is the node's Processor (`Gateway.processor`), over the same database: the
    portal processes the replies and requests it stores through it at once, and the agent
    API publishes on its event bus.
    """
    # The session lookup builds model instances without the ORM's query path, which is what
    # configures the mappers otherwise: a fresh process whose first request is a signed-in
    # page answered 500 without this.
    configure_mappers()
    # Answers to requests no application sees (a malformed request line, TLS sent to the
    # plain port) skip `on_prepare`; aiohttp takes their Server header from this global.
    web_response.SERVER_SOFTWARE = SERVER
    app = web.Application(
        middlewares=[observe_requests, untrusted_forwarding_warning(), error_pages, form_bodies, csrf_middleware],
        client_max_size=settings.max_message_size,
    )
    app[keys.SETTINGS] = settings
    app[keys.PROCESSOR] = processor
    app[keys.BRANDS] = BrandCache()
    app[keys.SUGGESTIONS] = SuggestionCache()
    app.cleanup_ctx.append(_database_context(settings, db))
    setup_templates(app)
    app.on_response_prepare.append(on_prepare)
    setup_routes(app)
    return app


async def start_portal(
    settings: Settings,
    db: Database | None = None,
    *,
    processor: Processor,
    host: str | None = None,
    port: int | None = None,
    reuse_port: bool = False,
) -> web.AppRunner:
    """Serve the portal on `settings.http_host:http_port`; stop it with `await runner.cleanup()`."""
    runner = web.AppRunner(create_app(settings, db, processor=processor), **runner_options())
    await runner.setup()
    port = settings.http_port if port is None else port
    site = web.TCPSite(runner, host or settings.http_host, port, reuse_port=reuse_port or None)
    await site.start()
    return runner
