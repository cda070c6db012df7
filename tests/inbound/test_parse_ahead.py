"""Parsing a backlog ahead in a worker process gives what inline parsing gives, and never loses mail."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import wait

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.inbound import parse_ahead as parse_ahead_module
from gateway.inbound.parse_ahead import MIN_BACKLOG, ParseAhead
from gateway.mail.parse import ParsedEmail, parse_email
from gateway.models import InboundEmail, InboundStatus, Ticket
from gateway.storage.database import orm
from tests.support import FIXTURES, SUPPORT

# Every fixture: each shape of ParsedEmail (attachments, forwards, reports, defects) crosses
# the process boundary.
ROWS = [(number, path.read_bytes()) for number, path in enumerate(sorted(FIXTURES.glob("*.eml")), 1)]


@pytest.fixture
def ahead() -> Iterator[ParseAhead]:
    parsing = ParseAhead(workers=1)
    yield parsing
    parsing.close()


def _no_inline_parsing(raw: bytes) -> ParsedEmail:
    raise AssertionError("parsed in the processing process")


def test_a_backlog_parsed_by_the_worker_equals_inline_parsing(
    ahead: ParseAhead, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = {row_id: parse_email(raw) for row_id, raw in ROWS}
    monkeypatch.setattr(parse_ahead_module, "parse_email", _no_inline_parsing)  # the worker imports its own

    wait(ahead.submit(ROWS))

    assert {row_id: ahead.parsed(row_id, raw) for row_id, raw in ROWS} == expected


def test_messages_the_worker_has_not_reached_are_parsed_inline_without_waiting(
    ahead: ParseAhead, monkeypatch: pytest.MonkeyPatch
) -> None:
    ahead.submit(ROWS)  # the worker process is still starting when processing begins
    early = [ahead.parsed(row_id, raw) for row_id, raw in ROWS]
    assert early == [parse_email(raw) for _, raw in ROWS]

    tasks = ahead.submit(ROWS)  # the worker is still in use for the next claim
    wait(tasks)
    monkeypatch.setattr(parse_ahead_module, "parse_email", _no_inline_parsing)
    assert tasks
    assert [ahead.parsed(row_id, raw) for row_id, raw in ROWS] == early


def test_a_small_claim_is_parsed_inline_without_starting_a_worker(ahead: ParseAhead) -> None:
    few = ROWS[: MIN_BACKLOG - 1]

    assert ahead.submit(few) == []
    assert multiprocessing.active_children() == []
    assert [ahead.parsed(row_id, raw) for row_id, raw in few] == [parse_email(raw) for _, raw in few]


def test_a_dead_worker_means_inline_parsing_from_then_on(
    ahead: ParseAhead, caplog: pytest.LogCaptureFixture
) -> None:
    wait(ahead.submit(ROWS))
    for worker in multiprocessing.active_children():
        worker.kill()
        worker.join()

    with caplog.at_level(logging.WARNING, logger="gateway.inbound.parse_ahead"):
        wait(ahead.submit(ROWS))  # the pool notices its worker is gone
        parsed = [ahead.parsed(row_id, raw) for row_id, raw in ROWS]
        assert ahead.submit(ROWS) == []  # and no new worker is started

    assert parsed == [parse_email(raw) for _, raw in ROWS]
    assert "parsing inline from now on" in caplog.text
    assert multiprocessing.active_children() == []


async def test_the_processor_drains_a_backlog_with_a_parse_worker(gateway: Gateway) -> None:
    backlog = [raw for _, raw in ROWS[: MIN_BACKLOG * 2]]
    for raw in backlog:
        await gateway.receive(raw, mail_from="customer@example.test", rcpt_tos=(SUPPORT,))

    assert await gateway.processor.drain() == len(backlog)

    def look(session: Session):
        rows = session.execute(select(InboundEmail.status, func.count()).group_by(InboundEmail.status))
        statuses = {status: count for status, count in rows}
        tickets = session.scalar(select(func.count()).select_from(Ticket))
        return statuses, tickets

    statuses, tickets = await gateway.db.read(orm(look))
    assert set(statuses) <= {InboundStatus.DELIVERED, InboundStatus.IGNORED}
    assert tickets
