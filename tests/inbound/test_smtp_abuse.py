"""Protocol abuse against the real listener: every hostile session gets correct answers (or
is cut off), nothing half-formed is stored, and an ordinary client on another connection
is served at the same time.

The listener runs with a three-second idle timeout here, so stalled sessions are cut
quickly. aiosmtpd's timer also runs while a command is served, so it bounds an ordinary
client's whole DATA phase too (upload and commit): one second was short enough for a
loaded CI machine to cut the bystander's transaction.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import InboundEmail, InboundStatus, Message
from gateway.settings import Settings
from gateway.storage.database import orm
from tests.portal.helpers import with_settings
from tests.smtp_wire import WireSession, still_serving
from tests.support import Server, send

pytestmark = pytest.mark.timeout(90)

IDLE_TIMEOUT = 3.0
MAIL = b"From: alice@customer.test\r\nTo: support@example.test\r\nSubject: %s\r\n\r\nPlease help.\r\n"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_settings(settings, smtp_idle_timeout=IDLE_TIMEOUT)


async def stored(gateway: Gateway) -> list[InboundEmail]:
    def look(session: Session):
        return list(session.scalars(select(InboundEmail).order_by(InboundEmail.id)).all())

    return await gateway.db.read(orm(look))


async def greeted(server: Server) -> WireSession:
    session = await WireSession.open(server)
    assert (await session.command(b"EHLO abuser.test")).code == 250
    return session


async def test_a_pipelined_flood_of_commands_is_answered_in_order_while_others_are_served(
    gateway: Gateway, smtp_server: Server
) -> None:
    session = await greeted(smtp_server)
    rounds = 1500
    flood = b"MAIL FROM:<flood@customer.test>\r\nRCPT TO:<support@example.test>\r\nRSET\r\n" * rounds
    await session.send(flood)
    await still_serving(smtp_server)
    codes = [reply.code for reply in await session.replies(3 * rounds)]
    assert codes == [250, 250, 250] * rounds
    assert all(b"bystander" in row.raw for row in await stored(gateway))
    await session.close()


async def test_a_whole_pipelined_transaction_in_one_write_is_stored_once(
    gateway: Gateway, smtp_server: Server
) -> None:
    session = await greeted(smtp_server)
    await session.send(
        b"MAIL FROM:<alice@customer.test>\r\nRCPT TO:<support@example.test>\r\nDATA\r\n"
        + MAIL % b"pipelined" + b".\r\nQUIT\r\n"
    )
    codes = [reply.code for reply in await session.replies(5)]
    assert codes == [250, 250, 354, 250, 221]
    [row] = await stored(gateway)
    assert b"Subject: pipelined" in row.raw


async def test_ten_thousand_recipients_get_452_past_the_limit_and_the_mail_is_stored_once(
    gateway: Gateway, smtp_server: Server
) -> None:
    limit = gateway.settings.max_recipients
    session = await greeted(smtp_server)
    await session.send(b"MAIL FROM:<alice@customer.test>\r\n" + b"RCPT TO:<support@example.test>\r\n" * 10_000)
    await still_serving(smtp_server)
    codes = [reply.code for reply in await session.replies(1 + 10_000)]
    assert codes[0] == 250
    assert codes[1:] == [250] * limit + [452] * (10_000 - limit)
    await session.send(b"DATA\r\n")
    assert (await session.reply()).code == 354
    await session.send(MAIL % b"many recipients" + b".\r\n")
    assert (await session.reply()).code == 250
    await gateway.processor.drain()
    rows = [row for row in await stored(gateway) if b"many recipients" in row.raw]
    assert len(rows) == 1 and len(rows[0].rcpt_tos) == limit

    def look(db_session: Session):
        messages = db_session.scalar(select(func.count(Message.id)).where(Message.inbound_email_id == rows[0].id))
        return messages

    messages = await gateway.db.read(orm(look))
    assert messages == 1


async def test_ten_thousand_unknown_recipients_are_each_refused_with_550(
    gateway: Gateway, smtp_server: Server
) -> None:
    session = await greeted(smtp_server)
    await session.send(
        b"MAIL FROM:<harvest@customer.test>\r\n"
        + b"".join(b"RCPT TO:<user%d@example.test>\r\n" % n for n in range(10_000))
    )
    await still_serving(smtp_server)
    replies = await session.replies(1 + 10_000)
    assert {reply.code for reply in replies[1:]} == {550}
    assert all(reply.text.startswith("5.1.1") for reply in replies[1:])


async def test_an_overlong_command_line_gets_500_and_the_session_carries_on(
    gateway: Gateway, smtp_server: Server
) -> None:
    session = await greeted(smtp_server)
    assert (await session.command(b"MAIL FROM:<" + b"a" * 600 + b"@customer.test>")).code == 500
    # Longer than the read buffer itself: drained, answered, and the session still works.
    await session.send(b"NOOP " + b"x" * (3 * 1024 * 1024) + b"\r\n")
    assert (await session.reply()).code == 500
    assert (await session.command(b"NOOP")).code == 250
    assert (await session.command(b"MAIL FROM:<alice@customer.test>")).code == 250


@pytest.mark.parametrize(
    ("line_length", "expected"),
    [(300 * 1024, 552), (3 * 1024 * 1024, 500)],
    ids=["over-the-size-limit", "over-the-line-buffer"],
)
async def test_an_overlong_line_in_data_is_refused_and_nothing_is_stored(
    gateway: Gateway, smtp_server: Server, line_length: int, expected: int
) -> None:
    session = await greeted(smtp_server)
    await session.send(b"MAIL FROM:<alice@customer.test>\r\nRCPT TO:<support@example.test>\r\nDATA\r\n")
    assert [r.code for r in await session.replies(3)] == [250, 250, 354]
    await session.send(b"Subject: long\r\n\r\n" + b"y" * line_length + b"\r\n.\r\n")
    assert (await session.reply()).code == expected
    assert await stored(gateway) == []
    assert (await session.command(b"MAIL FROM:<alice@customer.test>")).code == 250
    await still_serving(smtp_server)


async def test_stalled_sessions_are_cut_after_the_idle_timeout_and_others_are_served(
    gateway: Gateway, smtp_server: Server
) -> None:
    silent = [await WireSession.open(smtp_server) for _ in range(30)]
    half_line = [await WireSession.open(smtp_server) for _ in range(30)]
    for session in half_line:
        await session.send(b"MAIL FROM:<slow")
    in_data = [await greeted(smtp_server) for _ in range(10)]
    for session in in_data:
        await session.send(b"MAIL FROM:<alice@customer.test>\r\nRCPT TO:<support@example.test>\r\nDATA\r\n")
        assert [r.code for r in await session.replies(3)] == [250, 250, 354]
        await session.send(b"Subject: never finished\r\n\r\nhalf a bo")
    await still_serving(smtp_server)
    closed = await asyncio.gather(*(s.closed_by_server(IDLE_TIMEOUT + 4) for s in silent + half_line + in_data))
    assert all(closed)
    assert [row for row in await stored(gateway) if b"never finished" in row.raw] == []


async def test_a_trickle_of_bytes_does_not_keep_a_session_alive(gateway: Gateway, smtp_server: Server) -> None:
    session = await greeted(smtp_server)
    closed = False
    for byte in b"MAIL FROM:<" + b"s" * 100:
        try:
            await session.send(bytes([byte]))
        except ConnectionError:
            closed = True
            break
        if await session.closed_by_server(within=0.2):
            closed = True
            break
    assert closed, "a client sending one byte at a time held its session open past the idle timeout"


@pytest.mark.parametrize(
    "end_of_data",
    [b"\n.\n", b"\r\n.\n", b"\n.\r\n"],
    ids=["LF.LF", "CRLF.LF", "LF.CRLF"],
)
async def test_bare_lf_dot_does_not_end_data_so_no_second_message_is_smuggled(
    gateway: Gateway, smtp_server: Server, end_of_data: bytes
) -> None:
    session = await greeted(smtp_server)
    await session.send(b"MAIL FROM:<alice@customer.test>\r\nRCPT TO:<support@example.test>\r\nDATA\r\n")
    assert [r.code for r in await session.replies(3)] == [250, 250, 354]
    smuggled = (
        b"MAIL FROM:<ceo@example.test>\r\nRCPT TO:<support@example.test>\r\nDATA\r\n"
        b"From: ceo@example.test\r\nSubject: smuggled\r\n\r\nwire the money\r\n"
    )
    await session.send(b"Subject: innocent\r\n\r\nhello" + end_of_data + smuggled + b".\r\n")
    reply = await session.reply()
    assert reply.code == 250
    assert (await session.command(b"QUIT")).code == 221
    [row] = await stored(gateway)
    assert b"Subject: innocent" in row.raw and b"Subject: smuggled" in row.raw


async def test_commands_ending_in_bare_lf_are_understood(gateway: Gateway, smtp_server: Server) -> None:
    session = await WireSession.open(smtp_server)
    await session.send(b"EHLO lf.test\nMAIL FROM:<alice@customer.test>\nRCPT TO:<support@example.test>\nDATA\n")
    assert [r.code for r in await session.replies(4)] == [250, 250, 250, 354]
    await session.send(MAIL % b"lf commands" + b".\r\n")
    assert (await session.reply()).code == 250


@pytest.mark.parametrize(
    "mail_from",
    [b"<nul\x00byte@customer.test>", b"<\xff\xfe@customer.test>", b"<caf\xc3\xa9@customer.test>"],
    ids=["nul", "invalid-utf8", "utf8"],
)
async def test_odd_bytes_in_the_envelope_sender_never_make_anyone_elses_mail_fail(
    gateway: Gateway, smtp_server: Server, mail_from: bytes
) -> None:
    async def odd_sender() -> int:
        session = await greeted(smtp_server)
        reply = await session.command(b"MAIL FROM:" + mail_from)
        if reply.code != 250:
            assert 500 <= reply.code < 600, reply
            return reply.code
        assert (await session.command(b"RCPT TO:<support@example.test>")).code == 250
        assert (await session.command(b"DATA")).code == 354
        await session.send(MAIL % b"odd sender" + b".\r\n")
        return (await session.reply()).code

    # Many ordinary senders share group commits with the odd one.
    odd_senders = asyncio.gather(*(odd_sender() for _ in range(5)))
    neighbours = await asyncio.gather(*(send(smtp_server, MAIL % b"neighbour %d" % n) for n in range(20)))
    odd = await odd_senders
    assert all(code == 250 for code, _ in neighbours), neighbours
    assert all(code == 250 or code >= 500 for code in odd), odd
    await gateway.processor.drain()
    statuses = {row.status for row in await stored(gateway)}
    assert statuses <= {InboundStatus.DELIVERED, InboundStatus.IGNORED}


@pytest.mark.parametrize(
    "raw",
    [
        b"Message-ID: <nul\x00id@customer.test>\r\nFrom: alice@customer.test\r\nSubject: nul id\r\n\r\nbody\r\n",
        b"From: ali\x00ce@customer.test\r\nSubject: nul \x00 subject\r\n\r\nbody with \x00 in it\r\n",
        b"Message-ID: <\xff\xfe@customer.test>\r\nFrom: alice@customer.test\r\nSubject: \xff\r\n\r\n\xfe\r\n",
    ],
    ids=["nul-message-id", "nul-headers-and-body", "invalid-utf8-headers"],
)
async def test_nul_and_invalid_bytes_in_a_message_are_stored_and_processed(
    gateway: Gateway, smtp_server: Server, raw: bytes
) -> None:
    results = await asyncio.gather(
        send(smtp_server, raw), *(send(smtp_server, MAIL % b"neighbour %d" % n) for n in range(10))
    )
    assert [code for code, _ in results] == [250] * 11, results
    await gateway.processor.drain()
    rows = await stored(gateway)
    assert len(rows) == 11
    assert {row.status for row in rows} == {InboundStatus.DELIVERED}, [(r.status, r.last_error) for r in rows]


async def test_nul_bytes_in_commands_get_an_answer_and_the_session_continues(
    gateway: Gateway, smtp_server: Server
) -> None:
    session = await WireSession.open(smtp_server)
    assert (await session.command(b"EHLO nul\x00host")).code in (250, 501)
    assert (await session.command(b"NO\x00OP")).code == 500
    assert (await session.command(b"RCPT TO:<support@example.test\x00>")).code >= 500
    assert (await session.command(b"EHLO client.test")).code == 250
    assert (await session.command(b"MAIL FROM:<alice@customer.test>")).code == 250
    assert (await session.command(b"RCPT TO:<support@example.test\x00evil.test>")).code == 550
    assert (await session.command(b"RCPT TO:<support@example.test>")).code == 250
    await still_serving(smtp_server)
