"""No column of any table holds a usable token or code, sent mail included.

After a full flow over real SMTP and HTTP (a customer's request and its acknowledgement,
the agent's answer by email, a sign-in email asked for on the portal and its code used on
another device), every text and binary column of every table (the schema reflected from
the database, so a new table or column is covered the day it appears) is searched for
every link token and code that the mail actually sent carried: in the bytes as stored and,
for anything that parses as an email, in each decoded part. Zero hits.
"""

from __future__ import annotations

import email
import json
import re
from email import policy
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import Connection, MetaData, select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import OutboxMessage
from gateway.outbound.drafts import CODE_SENT, LINK_SENT
from gateway.settings import Settings
from gateway.storage.database import orm
from portal.app import create_app, runner_options
from tests.mailflow import ALICE, TOM, add_tom, build_mail, settle, smtp_send, text_of
from tests.portal.helpers import Client, post_form
from tests.support import SUPPORT, fixture_bytes

pytestmark = pytest.mark.timeout(120)

LINK = re.compile(r"https?://[^\s\"<>]+/l/([A-Za-z0-9_-]{43})")
CODE = re.compile(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b")


def readings(value: object) -> list[str]:
    """Every way a stored value can be read as text: as stored, and each part of an email."""
    if value is None:
        return []
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        found = [data.decode("latin-1")]
        try:
            message = email.message_from_bytes(data, policy=policy.default)
            for part in message.walk():
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    found.append(payload.decode("utf-8", "replace"))
        except Exception:  # noqa: BLE001 - not an email: the bytes as stored were read above
            pass
        return found
    if isinstance(value, str):
        return [value]
    return [json.dumps(value, default=str)]


async def every_stored_value(gateway: Gateway) -> dict[str, list[str]]:
    """`table.column` -> the readings of every value in it, for every table in the database."""

    def dump(connection: Connection) -> dict[str, list[str]]:
        metadata = MetaData()
        metadata.reflect(connection)
        found: dict[str, list[str]] = {}
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)).all():
                for column, value in zip(table.columns, row, strict=True):
                    found.setdefault(f"{table.name}.{column.name}", []).extend(readings(value))
        return found

    return await gateway.db.read(dump)


async def test_after_a_full_flow_no_column_of_any_table_holds_a_token_or_code_that_was_mailed(
    gateway: Gateway, settings: Settings, smtp_server: tuple[str, int], aiohttp_client: Any
) -> None:
    await add_tom(gateway)
    await smtp_send(smtp_server, ALICE, [SUPPORT], fixture_bytes("new-request.eml"))
    sender = await settle(gateway)
    [notification] = sender.to(TOM)
    agent_address = notification.message["Reply-To"]
    await smtp_send(
        smtp_server, TOM, [agent_address],
        build_mail(sender=f"Tom Agent <{TOM}>", to=agent_address, subject=f"Re: {notification.message['Subject']}",
                   body="Hi Alice, a technician is on the way.\n\nTom\n", in_reply_to=notification.message["Message-ID"]),
    )  # fmt: skip
    await settle(gateway)

    server = TestServer(create_app(settings, db=gateway.db, processor=gateway.processor))
    await server.start_server(**runner_options())
    browser: Client = await aiohttp_client(server)
    assert (await post_form(browser, "/login", {"email": ALICE})).status == 200
    sender = await settle(gateway)
    signin = sender.to(ALICE)[-1]
    assert "sign-in" in signin.message["Subject"]
    code = CODE.search(text_of(signin))
    assert code is not None
    phone = await aiohttp_client(TestServer(create_app(settings, db=gateway.db, processor=gateway.processor)))
    assert (await post_form(phone, "/code", {"email": ALICE, "code": code.group(1)})).status == 303

    mailed = sender.to(ALICE)
    assert len(mailed) == 3  # the acknowledgement, Tom's answer, the sign-in email
    secrets: set[str] = set()
    for mail in mailed:
        text = text_of(mail)
        tokens, codes = LINK.findall(text), CODE.findall(text)
        assert len(tokens) == 1 and len(codes) == 1, mail.message["Subject"]
        secrets |= {tokens[0], codes[0], codes[0].replace("-", "")}
    assert len(secrets) == 9

    def look(session: Session):
        kept = session.scalars(select(OutboxMessage.raw).where(OutboxMessage.kind == "signin")).one()
        return kept

    kept = await gateway.db.read(orm(look))
    parts = readings(kept)[1:]  # the copy kept of the sign-in email, part by part
    assert any(LINK_SENT in part and CODE_SENT in part for part in parts)

    stored = await every_stored_value(gateway)
    assert "outbox_message.raw" in stored and "magic_link.token_hmac" in stored
    hits = sorted(
        f"{column} holds {secret[:4]}…"
        for column, values in stored.items()
        for value in values
        for secret in secrets
        if secret in value
    )
    assert hits == []
