"""Magic-link tokens and codes: what is stored, what verifies, and why a refusal happens."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.link_secrets import CODE_ALPHABET, format_code, normalize_code
from gateway.auth.ratelimit import RateLimited, Rule, check, hit, window_start
from gateway.auth.tokens import (
    LinkPurpose,
    Refusal,
    check_link,
    consume_code,
    consume_link,
    issue_link,
    link_refusal,
    verify_link,
)
from gateway.cli.links import OperatorLinkError, issue_operator_link
from gateway.directory.contacts import contact_for
from gateway.models import AuditEvent, Contact, MagicLink, Mailbox, utcnow
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from gateway.tickets.service import open_ticket


async def alice(db: Database) -> Contact:
    return await db.write(lambda session: contact_for(session, "alice@example.test", "Alice"))


def other_keys(settings: Settings, *keys: str) -> Settings:
    return Settings(**{**settings.model_dump(), "secret_keys": list(keys)})


async def test_a_token_is_256_random_bits_and_the_code_avoids_look_alikes(db: Database, settings: Settings) -> None:
    contact = await alice(db)
    issued = await db.write(lambda session: [issue_link(session, settings, contact) for _ in range(20)])
    assert all(len(i.token) == 43 and i.token.replace("-", "").replace("_", "").isalnum() for i in issued)
    assert len({i.token for i in issued}) == 20
    assert all(len(i.code) == 8 and set(i.code) <= set(CODE_ALPHABET) for i in issued)
    assert not set("01OIL") & set(CODE_ALPHABET)
    assert issued[0].url(settings.public_url) == f"http://portal.example.test/l/{issued[0].token}"


async def test_only_hmacs_and_the_key_id_are_stored(db: Database, settings: Settings) -> None:
    contact = await alice(db)
    issued = await db.write(lambda session: issue_link(session, settings, contact))
    row = await db.read(orm(lambda session: session.get_one(MagicLink, issued.link.id)))
    stored = " ".join(str(getattr(row, c.key)) for c in MagicLink.__table__.columns)
    assert issued.token not in stored and issued.code not in stored
    assert row.key_id == settings.keys[0].kid
    assert len(row.token_hmac) == 64 and len(row.code_hmac) == 64


async def test_default_lifetimes_are_an_hour_for_replies_and_15_minutes_for_sign_ins(
    db: Database, settings: Settings
) -> None:
    contact, now = await alice(db), utcnow()

    def change(session: Session):
        reply = issue_link(session, settings, contact, now=now)
        signin = issue_link(session, settings, contact, purpose=LinkPurpose.SIGNIN, now=now)
        return reply, signin

    reply, signin = await db.write(change)
    assert reply.link.expires_at - now == timedelta(minutes=60)
    assert signin.link.expires_at - now == timedelta(minutes=15)


def test_settings_refuse_link_lifetimes_over_24_hours(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="24 hours"):
        Settings(**{**settings.model_dump(), "reply_link_ttl_minutes": 24 * 60 + 1})
    with pytest.raises(ValidationError, match="24 hours"):
        Settings(**{**settings.model_dump(), "signin_link_ttl_minutes": 2000})
    assert Settings(**{**settings.model_dump(), "reply_link_ttl_minutes": 24 * 60}).reply_link_ttl_minutes == 1440


async def test_issuing_a_link_longer_than_a_day_is_refused(db: Database, settings: Settings) -> None:
    contact = await alice(db)

    def change(session: Session):
        with pytest.raises(ValueError, match="24 hours"):
            issue_link(session, settings, contact, ttl=timedelta(hours=25))

    await db.write(change)


async def test_a_fresh_link_verifies_and_an_expired_one_logs_why(
    db: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    contact, now = await alice(db), utcnow()
    issued = await db.write(lambda session: issue_link(session, settings, contact, now=now))
    caplog.set_level(logging.DEBUG)

    def look(session: Session):
        assert verify_link(session, settings, issued.token, now=now + timedelta(minutes=59)) is not None
        assert verify_link(session, settings, issued.token, now=now + timedelta(minutes=60)) is None

    await db.read(orm(look))
    assert "magic link refused: expired" in caplog.text
    assert issued.token not in caplog.text


@pytest.mark.parametrize(
    ("mangle", "reason", "message"),
    [
        (lambda t: t[:-3], Refusal.MALFORMED, "not well formed"),
        (lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), Refusal.UNKNOWN, "no link matches"),
    ],
)
async def test_a_mangled_token_is_refused_with_its_reason(
    db: Database, settings: Settings, caplog: pytest.LogCaptureFixture, mangle, reason, message
) -> None:
    contact = await alice(db)
    issued = await db.write(lambda session: issue_link(session, settings, contact))
    caplog.set_level(logging.DEBUG)
    outcome = await db.read(orm(lambda session: check_link(session, settings, mangle(issued.token))))
    assert outcome.refusal is reason
    assert message in caplog.text


async def test_a_link_is_used_once(db: Database, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    contact = await alice(db)
    issued = await db.write(lambda session: issue_link(session, settings, contact))
    caplog.set_level(logging.DEBUG)
    first = await db.write(partial(consume_link, settings=settings, token=issued.token))
    second = await db.write(partial(consume_link, settings=settings, token=issued.token))
    assert first.ok and first.link is not None and first.link.consumed_at is not None
    assert second.refusal is Refusal.USED and not second.ok
    assert f"magic link refused: already used (link {issued.link.id})" in caplog.text


async def test_rotation_keeps_old_links_and_removing_the_key_ends_them(db: Database, settings: Settings) -> None:
    contact = await alice(db)
    old = other_keys(settings, "old-key")
    issued = await db.write(lambda session: issue_link(session, old, contact))

    def look(session: Session):
        assert verify_link(session, other_keys(settings, "new-key", "old-key"), issued.token) is not None
        assert verify_link(session, other_keys(settings, "new-key"), issued.token) is None
        assert verify_link(session, other_keys(settings, "someone-elses-key"), issued.token) is None

    await db.read(orm(look))


def test_refusal_reasons_are_decided_by_a_pure_function() -> None:
    now = utcnow()
    live = MagicLink(expires_at=now + timedelta(minutes=1), consumed_at=None, burned=False)
    assert link_refusal(live, now) is None
    assert link_refusal(None, now) is Refusal.UNKNOWN
    assert link_refusal(MagicLink(expires_at=now, consumed_at=None, burned=False), now) is Refusal.EXPIRED
    assert link_refusal(MagicLink(expires_at=now, consumed_at=now, burned=False), now) is Refusal.USED
    assert link_refusal(MagicLink(expires_at=now, consumed_at=now, burned=True), now) is Refusal.BURNED


def test_codes_are_forgiving_about_case_spaces_and_dashes() -> None:
    assert normalize_code(" abcd-efgh ") == "ABCDEFGH"
    assert normalize_code("ABCD EFGH") == "ABCDEFGH"
    assert format_code("ABCDEFGH") == "ABCD-EFGH"


async def test_a_code_signs_in_once(db: Database, settings: Settings) -> None:
    contact = await alice(db)
    issued = await db.write(lambda session: issue_link(session, settings, contact))
    outcome = await db.write(lambda session: consume_code(session, settings, contact, format_code(issued.code).lower()))
    assert outcome.ok and outcome.link is not None and outcome.link.id == issued.link.id
    again = await db.write(lambda session: consume_code(session, settings, contact, issued.code))
    assert again.refusal is Refusal.WRONG_CODE


async def test_wrong_codes_burn_the_link_after_the_allowed_attempts(db: Database, settings: Settings) -> None:
    contact = await alice(db)
    issued = await db.write(lambda session: issue_link(session, settings, contact))
    wrong = "ZZZZZZZZ" if issued.code != "ZZZZZZZZ" else "YYYYYYYY"
    outcomes = []
    for _ in range(settings.code_max_attempts):
        await db.write(lambda session: outcomes.append(consume_code(session, settings, contact, wrong)))
    assert [o.burned for o in outcomes] == [0] * (settings.code_max_attempts - 1) + [1]

    def change(session: Session):
        assert (consume_code(session, settings, contact, issued.code)).refusal is Refusal.WRONG_CODE
        assert (check_link(session, settings, issued.token)).refusal is Refusal.BURNED

    await db.write(change)


async def test_a_code_for_an_unknown_address_is_refused_like_a_wrong_one(db: Database, settings: Settings) -> None:
    outcome = await db.write(lambda session: consume_code(session, settings, None, "ABCDEFGH"))
    assert outcome.refusal is Refusal.WRONG_CODE and outcome.link is None


async def test_issuing_records_an_audit_event_without_token_or_code(db: Database, settings: Settings) -> None:
    contact = await alice(db)
    issued = await db.write(lambda session: issue_link(session, settings, contact))

    def look(session: Session):
        [event] = session.scalars(select(AuditEvent)).all()
        return event

    event = await db.read(orm(look))
    assert event.event == "link.issued" and event.contact_id == contact.id
    assert issued.token not in str(event.detail) and issued.code not in str(event.detail)


async def test_operator_link_is_a_portal_url_onto_the_ticket_and_is_not_logged(
    db: Database, settings: Settings, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    contact = await alice(db)
    ticket = await db.write(lambda session: open_ticket(session, session.get_one(Mailbox, mailbox.id), contact, "Help"))
    caplog.set_level(logging.DEBUG)

    url = await issue_operator_link(db, settings, "Alice@Example.test", f"#{ticket.ref}")

    assert url.startswith("http://portal.example.test/l/")
    token = url.rsplit("/", 1)[1]
    assert token not in caplog.text
    link = await db.read(orm(lambda session: verify_link(session, settings, token)))
    assert link is not None and link.ticket_id == ticket.id


async def test_operator_link_needs_a_known_contact_on_the_ticket(
    db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    contact = await alice(db)

    def change(session: Session):
        bob = contact_for(session, "bob@example.test")
        ticket = open_ticket(session, session.get_one(Mailbox, mailbox.id), bob, "Bob's")
        return ticket

    ticket = await db.write(change)
    with pytest.raises(OperatorLinkError, match="no contact"):
        await issue_operator_link(db, settings, "nobody@example.test")
    with pytest.raises(OperatorLinkError, match="does not take part"):
        await issue_operator_link(db, settings, contact.email, str(ticket.ref))
    with pytest.raises(OperatorLinkError, match="no ticket #999"):
        await issue_operator_link(db, settings, contact.email, "999")


async def test_rate_limit_trips_over_the_limit_and_resets_in_the_next_window(db: Database, settings: Settings) -> None:
    rule = Rule("signin-mail", "address", 2, timedelta(minutes=15))
    now = window_start(utcnow(), rule.window) + timedelta(minutes=5)

    def change(session: Session):
        assert hit(session, settings, rule, "a@example.test", now=now) == 1
        assert hit(session, settings, rule, "A@example.test ", now=now) == 2

    await db.write(change)

    def change(session: Session):
        with pytest.raises(RateLimited) as limited:
            hit(session, settings, rule, "a@example.test", now=now)
        return limited

    limited = await db.write(change)
    assert limited.value.minutes == 10
    with pytest.raises(RateLimited):
        await db.read(partial(check, settings=settings, rule=rule, subject="a@example.test", now=now))
    await db.read(partial(check, settings=settings, rule=rule, subject="b@example.test", now=now))
    await db.read(partial(check, settings=settings, rule=rule, subject="a@example.test", now=now + timedelta(minutes=10)))

    def change(session: Session):
        assert hit(session, settings, rule, "a@example.test", now=now + timedelta(minutes=10)) == 1

    await db.write(change)
