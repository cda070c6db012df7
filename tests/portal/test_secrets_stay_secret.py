"""No token, code or session id ever lands in a log line or an audit row."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy.orm import Session

from gateway.cli.links import issue_operator_link
from gateway.models import Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from portal.app import redact
from tests.portal.helpers import (
    ALICE,
    Client,
    MakeClient,
    add_contact,
    add_ticket,
    audit_events,
    issue,
    link_path,
    post_form,
    post_to_link,
    sent_signin_emails,
    sign_in_with_link,
)


async def test_no_token_or_code_appears_in_any_log_line_or_audit_row(
    client: Client,
    make_client: MakeClient,
    db: Database,
    settings: Settings,
    mailbox: Mailbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = await add_contact(db)
    ticket = await add_ticket(db, mailbox, alice)
    secrets: set[str] = set()

    reply_link = await issue(db, settings, alice, ticket=ticket)
    secrets |= {reply_link.token, reply_link.code}
    await client.head(link_path(reply_link.token))
    await client.get(link_path(reply_link.token))
    first = await sign_in_with_link(client, reply_link)
    secrets.add(first.cookies["wicket"].value)

    phone = await make_client(settings)
    await sign_in_with_link(phone, reply_link)  # used: the friendly page
    await post_form(phone, f"/l/{reply_link.token}/resend", {}, page=link_path(reply_link.token))
    await post_to_link(phone, reply_link.token[:-2] + "xy")  # tampered
    await post_form(phone, "/login", {"email": ALICE})
    await post_form(phone, "/login", {"email": "stranger@example.test"})
    emails = await sent_signin_emails(db, settings)
    for sent in emails:
        secrets |= {sent.token, sent.code, sent.code.replace("-", "")}
    await post_form(phone, "/code", {"email": ALICE, "code": "ZZZZ-ZZZZ"})
    signed_in = await post_form(phone, "/code", {"email": ALICE, "code": emails[-1].code})
    assert signed_in.status == 303
    secrets.add(signed_in.cookies["wicket"].value)
    await sign_in_with_link(phone, type(reply_link)(emails[0].token, "", reply_link.link))
    url = await issue_operator_link(db, settings, ALICE, str(ticket.ref))
    secrets.add(url.rsplit("/", 1)[1])

    assert len(emails) == 2 and len(secrets) >= 10
    logged = caplog.text + "\n".join(str(record.args) for record in caplog.records)
    assert "GET /l/[redacted]" in logged  # the access log ran, redacted
    audit = json.dumps(
        [[e.event, e.detail, e.request_ip, e.user_agent] for e in await audit_events(db)], default=str
    )
    assert "link.exchanged" in audit and "code.attempt" in audit
    for secret in secrets:
        assert secret not in logged, "a secret reached the logs"
        assert secret not in audit, "a secret reached the audit trail"


def test_access_log_lines_hide_link_tokens_and_sso_tokens() -> None:
    assert redact("/l/abcDEF123_-xyz") == "/l/[redacted]"
    assert redact("/l/abcDEF123/resend") == "/l/[redacted]/resend"
    assert redact("/sso/jwt?jwt=eyJhbGciOi.eyJzdWIi.sig&x=1") == "/sso/jwt?jwt=[redacted]&x=1"
    assert redact("/tickets?page=2") == "/tickets?page=2"


def test_audit_refuses_details_that_name_a_secret() -> None:
    from gateway.auth.audit import FORBIDDEN_DETAIL_KEYS

    assert {"token", "code", "password", "jwt"} <= FORBIDDEN_DETAIL_KEYS


async def test_recording_a_secret_in_audit_detail_is_an_error(db: Database) -> None:
    from gateway.auth.audit import record

    def look(session: Session):
        with pytest.raises(ValueError, match="must not carry secrets"):
            record(session, "link.issued", detail={"token": "abc"})

    await db.read(orm(look))
