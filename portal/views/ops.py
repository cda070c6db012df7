"""Operator endpoints on the HTTP port: liveness, readiness and Prometheus metrics.

`/healthz` answers 200 whenever the process serves HTTP and never touches the database, so
an orchestrator restarts only a process that is really stuck. `/readyz` asks the database
for the queue depths, bounded by a short timeout, and answers 200 with the inbound backlog,
failures and outbox depth as JSON, or 503 when the database cannot answer, so a load
balancer stops sending people to a node that cannot sign them in. `/metrics` refreshes the
queue gauges and answers with the Prometheus text of `gateway.metrics.REGISTRY`; when the
database is down it still answers with the process's own counters. It answers a scraper
holding the bearer token `metrics_token`; without a token set, only a direct connection
from this host (a loopback peer, no proxy's forwarding header), so a portal published
through a reverse proxy does not publish its metrics too. `observe_requests` is
the middleware that gives every request an id for its JSON log lines (and the
`X-Request-Id` header) and times it into `wicket_portal_request_seconds`, labelled by route
pattern (never the raw path, which may hold a magic-link token).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from gateway.logs import bound
from gateway.metrics import PORTAL_REQUEST_SECONDS, REGISTRY, queue_depths, refresh_queue_gauges
from portal import keys
from portal.client_address import FORWARDING_HEADERS, parse_ip
from portal.middlewares import route_label

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 3.0
DATABASE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError)  # TimeoutError is an OSError
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process is up and serving HTTP (no database involved)."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: 200 with the queue depths when the database answers, else 503."""
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            depths = await queue_depths(request.app[keys.DB])
    except DATABASE_ERRORS as error:
        log.warning("not ready: the database did not answer (%s)", type(error).__name__)
        return web.json_response(
            {"status": "unavailable", "database": "unreachable"}, status=503, headers={"Retry-After": "5"}
        )
    return web.json_response({"status": "ready", "database": "ok", **depths})


def _refusal(request: web.Request) -> web.Response | None:
    """None when `request` may read the metrics (the bearer token when one is set, else a
    direct local connection); otherwise the plain-text answer that says why not."""
    token = request.app[keys.SETTINGS].metrics_token
    if token is not None:
        scheme, _, credentials = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), expected):
            return None
        return web.Response(
            status=401,
            text="/metrics needs the metrics token as a bearer token.\n",
            headers={hdrs.WWW_AUTHENTICATE: 'Bearer realm="metrics"'},
        )
    if _is_loopback(request.remote) and not any(name in request.headers for name in FORWARDING_HEADERS):
        return None
    return web.Response(
        status=403,
        text="/metrics answers local connections only; set WICKET_METRICS_TOKEN to scrape it from elsewhere.\n",
    )


def _is_loopback(peer: str | None) -> bool:
    """Whether the connection's peer is this host (IPv4 seen through a dual-stack socket too)."""
    address = parse_ip(peer or "")
    return address is not None and address.is_loopback


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text; the queue gauges are fresh when the database answers."""
    refused = _refusal(request)
    if refused is not None:
        return refused
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await refresh_queue_gauges(request.app[keys.DB])
    except DATABASE_ERRORS as error:
        log.warning("metrics served without fresh queue gauges (%s)", type(error).__name__)
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


@functools.lru_cache(maxsize=1024)
def _latency(method: str, route: str, status: str) -> Histogram:
    """The latency histogram for one method, route pattern and status (labels() takes a lock)."""
    return PORTAL_REQUEST_SECONDS.labels(method, route, status)


@web.middleware
async def observe_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id for its log lines (and the `X-Request-Id` header), and observe
    its latency by method, route pattern and final status."""
    started = time.perf_counter()
    request_id = secrets.token_hex(8)
    status = 500
    try:
        with bound(request_id=request_id):
            response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as error:
        status = error.status
        error.headers["X-Request-Id"] = request_id
        raise
    finally:
        method = request.method if request.method in KNOWN_METHODS else "other"
        _latency(method, route_label(request), str(status)).observe(time.perf_counter() - started)


def add_ops_routes(router: web.UrlDispatcher) -> None:
    """Liveness, readiness and metrics."""
    router.add_get("/healthz", healthz, name="healthz")
    router.add_get("/readyz", readyz, name="readyz")
    router.add_get("/metrics", metrics, name="metrics")
