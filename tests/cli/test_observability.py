"""Operators can see what Wicket does: JSON log lines with ids, Prometheus counters."""

from __future__ import annotations

import io
import json
import logging

from gateway.cli.runtime import Gateway
from gateway.logs import JsonFormatter, bound
from gateway.metrics import REGISTRY, refresh_queue_gauges
from tests.support import ReceiveEmail, Server, send, simple_mail


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_json_log_lines_carry_the_ids_of_the_work_in_hand() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("wicket.test.json")
    logger.addHandler(handler)
    try:
        with bound(inbound_id=42):
            logger.warning("could not %s", "parse")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["message"] == "could not parse"
    assert inside["inbound_id"] == 42 and inside["level"] == "warning"
    assert "inbound_id" not in outside


async def test_smtp_replies_are_counted_by_stage_and_code(gateway: Gateway, smtp_server: Server) -> None:
    refused = sample("wicket_smtp_replies_total", stage="rcpt", code="550")
    accepted = sample("wicket_smtp_replies_total", stage="data", code="250")
    await send(smtp_server, simple_mail(), ["nobody@example.test"])
    await send(smtp_server, simple_mail())
    assert sample("wicket_smtp_replies_total", stage="rcpt", code="550") == refused + 1
    assert sample("wicket_smtp_replies_total", stage="data", code="250") == accepted + 1


async def test_processing_outcomes_latency_and_backlog_are_measured(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    delivered = sample("wicket_inbound_processed_total", outcome="delivered")
    timed = sample("wicket_inbound_processing_seconds_count")
    await receive_email("new-request.eml")
    assert sample("wicket_inbound_processed_total", outcome="delivered") == delivered + 1
    assert sample("wicket_inbound_processing_seconds_count") == timed + 1
    await gateway.receive(b"Subject: waiting\r\n\r\nbody\r\n", mail_from="a@customer.test",
                          rcpt_tos=("support@example.test",))
    depths = await refresh_queue_gauges(gateway.db)
    assert depths["inbound_backlog"] == 1
    assert sample("wicket_inbound_backlog") == 1
