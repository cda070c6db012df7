"""The SMTP listener over a real socket: what it refuses, and that 250 means stored."""

from __future__ import annotations

import asyncio
import smtplib

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import InboundEmail, InboundStatus, Message
from gateway.storage.database import orm
from gateway.tickets.reply_address import ReplyAddress, format_reply_address
from tests.support import FIXTURES, SUPPORT, Server, send, simple_mail


async def inbound_count(gateway: Gateway) -> int:
    return await gateway.db.read(orm(lambda session: session.scalar(select(func.count(InboundEmail.id))) or 0))


async def test_accepted_mail_is_committed_before_250_and_the_reply_names_the_row(
    gateway: Gateway, smtp_server: Server
) -> None:
    raw = simple_mail()
    code, reply = await send(smtp_server, raw)
    assert code == 250
    row_id = int(reply.decode().rsplit(" ", 1)[1])
    row = await gateway.db.read(orm(lambda session: session.get_one(InboundEmail, row_id)))
    assert row.status == InboundStatus.PENDING
    assert row.raw.replace(b"\r\n", b"\n").rstrip() == raw.replace(b"\r\n", b"\n").rstrip()
    assert row.mail_from == "alice@customer.test"
    assert row.rcpt_tos == [SUPPORT]
    assert row.peer.startswith("127.0.0.1:")


async def test_unknown_recipient_is_refused_with_550(gateway: Gateway, smtp_server: Server) -> None:
    code, reply = await send(smtp_server, simple_mail(), ["nobody@example.test"])
    assert code == 550
    assert reply.startswith(b"5.1.1")


async def test_other_domains_are_refused_so_the_listener_is_no_open_relay(
    gateway: Gateway, smtp_server: Server
) -> None:
    for recipient in ["someone@gmail.test", "support@example.test.evil.test", "support%evil.test@example.test"]:
        code, _ = await send(smtp_server, simple_mail(), [recipient])
        assert code == 550, recipient
    assert await inbound_count(gateway) == 0


async def test_signed_reply_address_is_accepted_and_a_tampered_one_refused(
    gateway: Gateway, smtp_server: Server
) -> None:
    signed = format_reply_address(ReplyAddress(SUPPORT, "t", "abcdefghijklmnop"), gateway.settings.keys[0])
    code, _ = await send(smtp_server, simple_mail(), [signed])
    assert code == 250
    tampered = signed.replace("+t.abcdefghijklmnop.", "+t.abcdefghijklmnoq.")
    code, reply = await send(smtp_server, simple_mail(), [tampered])
    assert (code, reply[:5]) == (550, b"5.1.1")


async def test_reply_address_signed_with_an_older_key_is_still_accepted(
    gateway: Gateway, smtp_server: Server
) -> None:
    older = gateway.settings.keys[1]
    signed = format_reply_address(ReplyAddress(SUPPORT, "t", "abcdefghijklmnop"), older)
    code, _ = await send(smtp_server, simple_mail(), [signed])
    assert code == 250


async def test_oversize_message_is_refused_with_552_and_not_stored(
    gateway: Gateway, smtp_server: Server
) -> None:
    limit = gateway.settings.max_message_size
    code, reply = await send(smtp_server, simple_mail(size=limit + 10))
    assert code == 552
    assert reply.startswith(b"5.3.4")
    assert await inbound_count(gateway) == 0


async def test_size_is_advertised_and_no_auth_is_offered(gateway: Gateway, smtp_server: Server) -> None:
    def features() -> dict[str, str]:
        with smtplib.SMTP(*smtp_server, timeout=10) as client:
            client.ehlo("client.test")
            return dict(client.esmtp_features)

    offered = await asyncio.to_thread(features)
    assert int(offered["size"]) == gateway.settings.max_message_size
    assert "auth" not in offered


async def test_declared_size_over_the_limit_is_refused_at_mail_from(
    gateway: Gateway, smtp_server: Server
) -> None:
    def declare() -> tuple[int, bytes]:
        with smtplib.SMTP(*smtp_server, timeout=10) as client:
            client.ehlo("client.test")
            return client.mail("alice@customer.test", [f"SIZE={gateway.settings.max_message_size + 1}"])

    code, _ = await asyncio.to_thread(declare)
    assert code == 552


async def test_too_many_recipients_get_452(gateway: Gateway, smtp_server: Server) -> None:
    limit = gateway.settings.max_recipients

    def many() -> list[int]:
        with smtplib.SMTP(*smtp_server, timeout=10) as client:
            client.ehlo("client.test")
            client.mail("alice@customer.test")
            return [client.rcpt(SUPPORT)[0] for _ in range(limit + 1)]

    codes = await asyncio.to_thread(many)
    assert codes[:limit] == [250] * limit
    assert codes[limit] == 452


async def test_database_failure_answers_451_stores_nothing_and_recovers(
    gateway: Gateway, smtp_server: Server
) -> None:
    await gateway.db.write(lambda session: session.execute(text("ALTER TABLE inbound_email RENAME TO away")))
    code, reply = await send(smtp_server, simple_mail())
    assert code == 451
    assert reply.startswith(b"4.3.0")
    assert await gateway.db.read(lambda connection: connection.scalar(text("SELECT count(*) FROM away"))) == 0
    await gateway.db.write(lambda session: session.execute(text("ALTER TABLE away RENAME TO inbound_email")))
    code, _ = await send(smtp_server, simple_mail())
    assert code == 250
    assert await inbound_count(gateway) == 1


async def test_concurrent_sessions_share_commits(gateway: Gateway, smtp_server: Server) -> None:
    commits = 0

    def count_commit(_conn: object) -> None:
        nonlocal commits
        commits += 1

    targets = gateway.db.engines  # on SQLite the reader's sees no commit; the writer's sees the store's
    for target in targets:
        event.listen(target, "commit", count_commit)
    sessions = 30
    replies = await asyncio.gather(*(send(smtp_server, simple_mail(f"burst {i}")) for i in range(sessions)))
    for target in targets:
        event.remove(target, "commit", count_commit)
    assert [code for code, _ in replies] == [250] * sessions
    assert await inbound_count(gateway) == sessions
    assert 0 < commits < sessions


async def test_every_fixture_is_accepted_and_the_listener_keeps_serving(
    gateway: Gateway, smtp_server: Server
) -> None:
    names = sorted(p.name for p in FIXTURES.glob("*.eml"))
    assert len(names) >= 30
    for name in names:
        code, reply = await send(smtp_server, (FIXTURES / name).read_bytes())
        assert code == 250, (name, reply)
    await gateway.processor.drain()

    def look(session: Session):
        statuses = session.execute(select(InboundEmail.status)).scalars().all()
        malformed = sum(1 for defects in session.execute(select(Message.defects)).scalars() if defects)
        return statuses, malformed

    statuses, malformed = await gateway.db.read(orm(look))
    assert len(statuses) == len(names)
    assert set(statuses) <= {InboundStatus.DELIVERED, InboundStatus.IGNORED}
    assert malformed and malformed >= 3
    code, _ = await send(smtp_server, simple_mail("still here"))
    assert code == 250


@pytest.mark.parametrize("line", [b"NUL\x00byte", b"bare\nLF only"])
async def test_odd_bytes_in_data_are_stored_verbatim(gateway: Gateway, smtp_server: Server, line: bytes) -> None:
    raw = b"From: alice@customer.test\r\nTo: support@example.test\r\nSubject: odd\r\n\r\n" + line + b"\r\n"
    code, reply = await send(smtp_server, raw)
    assert code == 250
    row_id = int(reply.decode().rsplit(" ", 1)[1])
    row = await gateway.db.read(orm(lambda session: session.get_one(InboundEmail, row_id)))
    assert line.replace(b"\n", b"\r\n") in row.raw or line in row.raw
