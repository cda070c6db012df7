"""Operator endpoints: /healthz says the process is up (no database needed), /readyz says
whether the database answers and how deep the queues are, /metrics speaks Prometheus —
queue gauges, portal latency by route pattern, link exchanges by outcome — and none of
them ever shows a token."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr, ValidationError

from gateway.cli.runtime import Gateway
from gateway.logs import JsonFormatter
from gateway.settings import Settings
from gateway.storage.database import Database, open_database
from portal.views.ops import metrics
from tests.portal.helpers import Client, add_contact, issue, link_path, post_to_link, sign_in_with_link
from tests.support import SUPPORT, portal_app, simple_mail

Serve = Callable[[web.Application], Awaitable[Client]]


@pytest.fixture
async def broken_db(settings: Settings, tmp_path: Path) -> AsyncIterator[Database]:
    """A database without tables: every query fails the way an unreachable one does."""
    database = open_database(settings, f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    yield database
    await database.dispose()


async def samples(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    found = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_healthz_answers_without_the_database_and_readyz_answers_503_without_it(
    serve: Serve, settings: Settings, broken_db: Database
) -> None:
    client = await serve(portal_app(settings, broken_db))
    health = await client.get("/healthz")
    assert health.status == 200 and await health.json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 503 and ready.headers["Retry-After"]
    assert await ready.json() == {"status": "unavailable", "database": "unreachable"}
    assert (await client.get("/metrics")).status == 200  # counters still served


async def test_readyz_reports_the_backlog_when_the_database_answers(client: Client, gateway: Gateway) -> None:
    for n in range(2):
        await gateway.receive(simple_mail(f"waiting {n}"), mail_from="a@customer.test", rcpt_tos=(SUPPORT,))
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200 and body["status"] == "ready" and body["database"] == "ok"
    assert body["inbound_backlog"] == 2 and body["inbound_failed"] == 0 and body["outbox_depth"] == 0


async def test_metrics_show_queue_depths_request_latency_by_route_and_link_exchanges_by_outcome(
    client: Client, make_client: Callable[[Settings], Awaitable[Client]], gateway: Gateway, db: Database,
    settings: Settings,
) -> None:
    await gateway.receive(simple_mail("waiting"), mail_from="a@customer.test", rcpt_tos=(SUPPORT,))
    before = await samples(client)
    alice = await add_contact(db)
    issued = await issue(db, settings, alice)
    await client.get(link_path(issued.token))
    assert (await sign_in_with_link(client, issued)).status == 303
    other = await make_client(settings)
    await sign_in_with_link(other, issued)  # used
    await post_to_link(other, "x" * 43)  # unknown
    after = await samples(client)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert after[("wicket_inbound_backlog", ())] == 1
    assert grew("wicket_link_exchanges_total", outcome="ok") == 1
    assert grew("wicket_link_exchanges_total", outcome="used") == 1
    assert grew("wicket_link_exchanges_total", outcome="unknown") + grew(
        "wicket_link_exchanges_total", outcome="malformed") == 1
    assert grew("wicket_portal_request_seconds_count", method="GET", route="/l/{token}", status="200") == 2
    assert grew("wicket_portal_request_seconds_count", method="POST", route="/l/{token}", status="303") == 1
    text = await (await client.get("/metrics")).text()
    assert issued.token not in text and issued.code not in text


async def test_each_request_has_an_id_that_its_json_log_lines_carry(client: Client) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("portal.csrf")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        refused = await client.post("/login", data={"email": "alice@example.test"})  # no CSRF token: logged
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert refused.status == 403 and line["message"].startswith("CSRF check failed")
    assert line["request_id"] == refused.headers["X-Request-Id"] and len(line["request_id"]) == 16
    other = await client.get("/healthz")
    assert other.headers["X-Request-Id"] != refused.headers["X-Request-Id"]


async def test_metrics_without_a_token_answer_only_a_direct_local_connection(
    client: Client, app: web.Application
) -> None:
    assert (await client.get("/metrics")).status == 200  # the test client connects over loopback
    proxied = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status == 403 and "WICKET_METRICS_TOKEN" in await proxied.text()
    assert (await client.get("/metrics", headers={"Forwarded": "for=203.0.113.9"})).status == 403

    remote = make_mocked_request("GET", "/metrics", app=app, transport=_peer("198.51.100.7"))
    assert (await metrics(remote)).status == 403
    dual_stack = make_mocked_request("GET", "/metrics", app=app, transport=_peer("::ffff:127.0.0.1"))
    assert (await metrics(dual_stack)).status == 200


async def test_metrics_with_a_token_need_it_as_a_bearer_token(
    make_client: Callable[[Settings], Awaitable[Client]], settings: Settings
) -> None:
    token = "m" * 40
    client = await make_client(settings.model_copy(update={"metrics_token": SecretStr(token)}))

    missing = await client.get("/metrics")
    assert missing.status == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {'x' * 40}"})).status == 401
    assert (await client.get("/metrics", headers={"Authorization": f"Basic {token}"})).status == 401
    proxied = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "203.0.113.9"}
    scraped = await client.get("/metrics", headers=proxied)
    assert scraped.status == 200 and "wicket_inbound_backlog" in await scraped.text()


def test_a_short_metrics_token_is_refused_at_start_up(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings.model_validate({**settings.model_dump(), "metrics_token": "short"})


def _peer(address: str) -> mock.Mock:
    """A transport whose peer is `address`, for a request built without a socket."""
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (address, 40000) if name == "peername" else default
    )
    return transport
