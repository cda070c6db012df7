"""Asking for a sign-in email at /login, and signing in with its code at /code."""

from __future__ import annotations

import re

from gateway.models import Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database
from tests.portal.helpers import (
    ALICE,
    Client,
    MakeClient,
    add_contact,
    audit_events,
    form_token,
    link_path,
    live_sessions,
    post_form,
    sent_signin_emails,
    with_settings,
)


def _comparable(body: str, address: str) -> str:
    """A page with the parts that legitimately differ (typed address, CSRF token) blanked."""
    return re.sub(r'value="[A-Za-z0-9_-]{43}"', 'value="TOKEN"', body).replace(address, "ADDRESS")


async def test_login_emails_a_link_and_a_code_to_a_known_address(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    await add_contact(db)
    response = await post_form(client, "/login", {"email": " Alice@Example.test "})

    assert response.status == 200
    assert "Check your email" in await response.text()
    [sent] = await sent_signin_emails(db, settings)
    message = sent.message
    assert sent.row.rcpt_tos == [ALICE] and sent.row.kind == "signin"
    assert message["From"] == "Example Support <support@example.test>"
    assert ALICE in message["To"]
    assert "sign-in link" in message["Subject"]
    assert message["Message-ID"].endswith("@example.test>")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Wicket-Loop"] == settings.loop_token
    assert f"{settings.public_url}/l/{sent.token}" in sent.text and sent.token in sent.html
    assert sent.code in sent.text and sent.code in sent.html
    assert "15 minutes" in sent.text


async def test_login_for_unknown_address_answers_exactly_like_a_known_one_and_sends_nothing(
    client: Client, db: Database, settings: Settings
) -> None:
    await add_contact(db)
    known = await post_form(client, "/login", {"email": ALICE})
    unknown = await post_form(client, "/login", {"email": "stranger@example.test"})

    assert known.status == unknown.status == 200
    assert _comparable(await known.text(), ALICE) == _comparable(await unknown.text(), "stranger@example.test")
    assert sorted(known.headers.keys()) == sorted(unknown.headers.keys())
    assert len(await sent_signin_emails(db, settings)) == 1
    events = await audit_events(db, "signin.requested")
    assert [e.detail["known"] for e in events] == [True, False]


async def test_emailed_link_signs_in_and_returns_to_the_page_asked_for(
    client: Client, db: Database, settings: Settings
) -> None:
    await add_contact(db)
    start = await client.get("/tickets/abc?tab=1", allow_redirects=False)
    assert start.status == 302 and start.headers["Location"].startswith("/login?next=")
    login_page = start.headers["Location"]
    await post_form(client, "/login", {"email": ALICE, "next": "/tickets/abc?tab=1"}, page=login_page)

    [sent] = await sent_signin_emails(db, settings)
    response = await post_form(client, link_path(sent.token), {})
    assert response.status == 303 and response.headers["Location"] == "/tickets/abc?tab=1"


async def test_code_from_the_email_signs_in_on_another_device(
    client: Client, make_client: MakeClient, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    await post_form(client, "/login", {"email": ALICE})
    [sent] = await sent_signin_emails(db, settings)

    phone = await make_client(settings)
    response = await post_form(phone, "/code", {"email": ALICE, "code": sent.code.lower()})

    assert response.status == 303 and response.headers["Location"] == "/tickets"
    assert "alice@example.test" in await (await phone.get("/tickets")).text()
    [session] = await live_sessions(db, alice)
    assert session.method == "code"
    link_page = await client.get(link_path(sent.token))
    assert "already been used" in await link_page.text()


async def test_code_attempts_are_limited_then_the_link_is_burned(
    client: Client, db: Database, settings: Settings
) -> None:
    await add_contact(db)
    await post_form(client, "/login", {"email": ALICE})
    [sent] = await sent_signin_emails(db, settings)
    wrong = "ZZZZ-ZZZZ" if sent.code != "ZZZZ-ZZZZ" else "YYYY-YYYY"

    for _ in range(settings.code_max_attempts):
        response = await post_form(client, "/code", {"email": ALICE, "code": wrong})
        assert response.status == 400
        assert "That code did not work" in await response.text()
    right = await post_form(client, "/code", {"email": ALICE, "code": sent.code})

    assert right.status == 400
    assert await live_sessions(db) == []
    burned = await client.get(link_path(sent.token))
    assert burned.status == 410 and "switched off" in await burned.text()
    attempts = await audit_events(db, "code.attempt")
    assert [a.detail["ok"] for a in attempts] == [False] * (settings.code_max_attempts + 1)
    assert attempts[settings.code_max_attempts - 1].detail["burned"] == 1


async def test_code_for_an_unknown_address_gets_the_same_answer(
    client: Client, db: Database, settings: Settings
) -> None:
    await add_contact(db)
    await post_form(client, "/login", {"email": ALICE})
    [sent] = await sent_signin_emails(db, settings)
    known = await post_form(client, "/code", {"email": ALICE, "code": "ZZZZ-ZZZY"})
    unknown = await post_form(client, "/code", {"email": "stranger@example.test", "code": sent.code})
    assert known.status == unknown.status == 400
    assert _comparable(await known.text(), ALICE) == _comparable(await unknown.text(), "stranger@example.test")


async def test_login_is_rate_limited_per_address_with_a_friendly_page(
    client: Client, db: Database, settings: Settings
) -> None:
    await add_contact(db)
    for _ in range(settings.rate_limit_mail_per_address):
        assert (await post_form(client, "/login", {"email": ALICE})).status == 200
    limited = await post_form(client, "/login", {"email": ALICE})

    assert limited.status == 429
    body = await limited.text()
    assert "Please try again in" in body and "minute" in body
    assert int(limited.headers["Retry-After"]) > 0
    assert len(await sent_signin_emails(db, settings)) == settings.rate_limit_mail_per_address
    other = await post_form(client, "/login", {"email": "someone@example.test"})
    assert other.status == 200


async def test_login_is_rate_limited_per_client_ip(make_client: MakeClient, db: Database, settings: Settings) -> None:
    client = await make_client(with_settings(settings, rate_limit_mail_per_ip=3))
    statuses = [(await post_form(client, "/login", {"email": f"p{n}@example.test"})).status for n in range(4)]
    assert statuses == [200, 200, 200, 429]


async def test_code_guessing_is_rate_limited_per_client_ip(
    make_client: MakeClient, db: Database, settings: Settings
) -> None:
    client = await make_client(with_settings(settings, rate_limit_failures_per_ip=3))
    statuses = [
        (await post_form(client, "/code", {"email": f"p{n}@example.test", "code": "ABCD-EFGH"})).status
        for n in range(4)
    ]
    assert statuses == [400, 400, 400, 429]


async def test_invalid_address_is_explained_on_the_form(client: Client, db: Database, settings: Settings) -> None:
    response = await post_form(client, "/login", {"email": "not an address"})
    assert response.status == 400
    assert "Enter your email address" in await response.text()
    assert await sent_signin_emails(db, settings) == []


async def test_signed_in_visitor_of_login_goes_to_the_ticket_list(
    client: Client, db: Database, settings: Settings
) -> None:
    await add_contact(db)
    await post_form(client, "/login", {"email": ALICE})
    [sent] = await sent_signin_emails(db, settings)
    await post_form(client, link_path(sent.token), {})
    response = await client.get("/login", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/tickets"
    assert await form_token(client, "/tickets")


async def test_behind_a_trusted_proxy_limits_apply_per_forwarded_client(
    make_client: MakeClient, db: Database, settings: Settings
) -> None:
    client = await make_client(with_settings(settings, rate_limit_mail_per_ip=1, trusted_proxies=["127.0.0.0/8"]))

    async def ask(forwarded_for: str) -> int:
        token = await form_token(client, "/login")
        response = await client.post(
            "/login",
            data={"email": "p@example.test", "csrf_token": token},
            headers={"X-Forwarded-For": forwarded_for},
        )
        return response.status

    assert await ask("203.0.113.7") == 200
    assert await ask("198.51.100.4, 127.0.0.1") == 200
    assert await ask("10.9.9.9, 203.0.113.7") == 429


async def test_forwarded_for_is_ignored_without_a_trusted_proxy(
    make_client: MakeClient, db: Database, settings: Settings
) -> None:
    client = await make_client(with_settings(settings, rate_limit_mail_per_ip=1))
    statuses = []
    for spoofed in ("203.0.113.7", "198.51.100.4"):
        token = await form_token(client, "/login")
        response = await client.post(
            "/login", data={"email": "p@example.test", "csrf_token": token}, headers={"X-Forwarded-For": spoofed}
        )
        statuses.append(response.status)
    assert statuses == [200, 429]
