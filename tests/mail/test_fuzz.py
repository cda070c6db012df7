"""Property-based fuzzing of the inbound path with hypothesis: whatever bytes arrive, the
parser returns a result without raising, every string it returns can be stored by any
database, and the processor stores every input and files it as a ticket message (or as
an ignored duplicate) instead of failing.

The inputs come from `tests.mime_strategies`: hand-built MIME trees, headers, charsets,
transfer encodings and sizes, often malformed, then truncated or spliced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.mail.parse import ParsedEmail, parse_email
from gateway.models import InboundEmail, InboundStatus, Message
from gateway.storage.database import orm
from tests.mime_strategies import hostile_emails
from tests.support import SUPPORT, recombines

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    print_blob=True,  # a failure prints the @reproduce_failure line
)


def strings_in(value: object) -> Iterator[str]:
    """Every str reachable from a parse result (dataclasses, tuples, lists, dicts, Headers)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes | bytearray | int | float | bool) or value is None:
        return
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from strings_in(getattr(value, field.name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif hasattr(value, "__iter__"):
        for item in value:  # type: ignore[attr-defined]
            yield from strings_in(item)


def storable(text: str) -> bool:
    try:
        text.encode("utf-8", "strict")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@settings(FUZZ, max_examples=400)
@given(raw=hostile_emails)
def test_the_parser_never_raises_and_returns_only_storable_text(raw: bytes) -> None:
    parsed = parse_email(raw)
    assert isinstance(parsed, ParsedEmail)
    bad = [text[:80] for text in strings_in(parsed) if not storable(text)]
    assert not bad, f"strings no database column takes: {bad!r}"
    for attachment in parsed.attachments:
        assert isinstance(attachment.data, bytes) and attachment.size == len(attachment.data)
    assert recombines(parsed.text, parsed.reply_text, parsed.quoted_text)


@settings(FUZZ, max_examples=150)
@given(raw=hostile_emails)
async def test_every_input_is_stored_and_processed_without_failing(gateway: Gateway, raw: bytes) -> None:
    inbound_id = await gateway.receive(raw, mail_from="fuzz@customer.test", rcpt_tos=(SUPPORT,), source="fuzz")
    await gateway.processor.drain()

    def look(session: Session):
        row = session.get_one(InboundEmail, inbound_id)
        messages = session.scalar(select(func.count(Message.id)).where(Message.inbound_email_id == inbound_id))
        return row, messages

    row, messages = await gateway.db.read(orm(look))
    assert row.raw == raw
    assert row.status in (InboundStatus.DELIVERED, InboundStatus.IGNORED), (row.status, row.last_error)
    assert messages == (1 if row.status == InboundStatus.DELIVERED else 0)
