"""Prometheus metrics: one registry per process, named for what an operator watches.

Counters and histograms are module-level objects in a registry of our own (not the
client's global one), so tests can read them and the portal's `/metrics` exposes exactly
these. Gauges that need the database (backlog, outbox depth) are filled in by
`refresh_queue_gauges` when `/metrics` is scraped. The portal times every request and
counts link exchanges by outcome (`ok`, or the refusal: malformed, unknown, expired, used,
burned).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import Connection, func, select

from gateway.models import InboundEmail, InboundStatus, OutboxMessage, OutboxStatus
from gateway.storage.database import Database

REGISTRY = CollectorRegistry(auto_describe=True)

SMTP_REPLIES = Counter(
    "wicket_smtp_replies_total", "SMTP replies to RCPT and DATA, by code", ["stage", "code"], registry=REGISTRY
)
PROCESSED = Counter(
    "wicket_inbound_processed_total", "Inbound emails processed, by outcome", ["outcome"], registry=REGISTRY
)
PROCESSING_SECONDS = Histogram(
    "wicket_inbound_processing_seconds", "Time to process one inbound email", registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BACKLOG = Gauge("wicket_inbound_backlog", "Inbound emails waiting or being processed", registry=REGISTRY)
FAILED = Gauge("wicket_inbound_failed", "Inbound emails failed (retrying or dead-lettered)", registry=REGISTRY)
OUTBOX_DEPTH = Gauge("wicket_outbox_depth", "Outbound emails not yet sent", registry=REGISTRY)
OUTBOX_FAILED = Gauge("wicket_outbox_failed", "Outbound emails that failed for good", registry=REGISTRY)
# The portal's side. Routes are labelled by pattern (`/l/{token}`), never by path.
PORTAL_REQUEST_SECONDS = Histogram(
    "wicket_portal_request_seconds", "Time to answer one portal request, by route pattern, method and status",
    ["method", "route", "status"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LINK_EXCHANGES = Counter(
    "wicket_link_exchanges_total", "Magic-link exchanges (POST /l/{token}), by outcome", ["outcome"],
    registry=REGISTRY,
)


async def queue_depths(db: Database) -> dict[str, int]:
    """Backlog and failure counts of the inbound queue and the outbox.

    Only unfinished statuses are counted, through the claim indexes, so the cost follows
    the backlog and not the millions of delivered and sent rows.
    """
    unfinished_inbound = (InboundStatus.PENDING, InboundStatus.PROCESSING, InboundStatus.FAILED)
    unfinished_outbox = (OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.FAILED)

    def count(connection: Connection) -> tuple[dict[Any, int], dict[Any, int]]:
        inbound = connection.execute(
            select(InboundEmail.status, func.count())
            .where(InboundEmail.status.in_(unfinished_inbound))
            .group_by(InboundEmail.status)
        )
        outbox = connection.execute(
            select(OutboxMessage.status, func.count())
            .where(OutboxMessage.status.in_(unfinished_outbox))
            .group_by(OutboxMessage.status)
        )
        return {status: count for status, count in inbound}, {status: count for status, count in outbox}

    inbound, outbox = await db.read(count)
    return {
        "inbound_backlog": inbound.get(InboundStatus.PENDING, 0) + inbound.get(InboundStatus.PROCESSING, 0),
        "inbound_failed": inbound.get(InboundStatus.FAILED, 0),
        "outbox_depth": outbox.get(OutboxStatus.QUEUED, 0) + outbox.get(OutboxStatus.SENDING, 0),
        "outbox_failed": outbox.get(OutboxStatus.FAILED, 0),
    }


async def refresh_queue_gauges(db: Database) -> dict[str, int]:
    depths = await queue_depths(db)
    BACKLOG.set(depths["inbound_backlog"])
    FAILED.set(depths["inbound_failed"])
    OUTBOX_DEPTH.set(depths["outbox_depth"])
    OUTBOX_FAILED.set(depths["outbox_failed"])
    return depths
