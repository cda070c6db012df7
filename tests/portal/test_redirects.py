"""Return paths: only local paths are followed; anything that could leave the site is not."""

from __future__ import annotations

import pytest

from gateway.settings import Settings
from gateway.storage.database import Database
from portal.redirects import safe_return_path
from tests.portal.helpers import Client, add_contact, issue, post_form, sent_signin_emails, sign_in_with_link

LOCAL = [
    "/tickets",
    "/tickets/abc123",
    "/tickets/abc?tab=messages&page=2",
    "/help/articles/how-to#step-2",
    "/tickets/a%20b",
    "/https://evil.test",
]
ELSEWHERE = [
    "//evil.test",
    "///evil.test",
    "https://evil.test",
    "http://evil.test/tickets",
    "javascript:alert(1)",
    "/\\evil.test",
    "\\\\evil.test",
    "/%2F%2Fevil.test",
    "/%2f%2fevil.test",
    "/%5Cevil.test",
    "/%5cevil.test",
    "%2F%2Fevil.test",
    "/%252F%252Fevil.test",
    "/%25252F%25252Fevil.test",
    "/%09/evil.test",
    "/\t/evil.test",
    "/ /evil.test",
    "/\n/evil.test",
    "/tickets\r\nSet-Cookie: x=1",
    "/ticketsé",
    "tickets",
    "",
    "/" + "a" * 3000,
]


@pytest.mark.parametrize("path", LOCAL)
def test_local_paths_are_kept(path: str) -> None:
    assert safe_return_path(path) == path


@pytest.mark.parametrize("path", ELSEWHERE)
def test_paths_that_could_leave_the_site_are_refused(path: str) -> None:
    assert safe_return_path(path) is None


def test_non_strings_are_refused() -> None:
    assert safe_return_path(None) is None
    assert safe_return_path(["/tickets"]) is None


ATTACKS = ["//evil.test", "https://evil.test", "/\\evil.test", "/%2F%2Fevil.test", "/%5Cevil.test"]


@pytest.mark.parametrize("path", ATTACKS)
async def test_open_redirect_in_a_links_return_path_goes_to_the_ticket_list(
    client: Client, db: Database, settings: Settings, path: str
) -> None:
    alice = await add_contact(db)
    response = await sign_in_with_link(client, await issue(db, settings, alice, return_path=path))
    assert response.status == 303 and response.headers["Location"] == "/tickets"


@pytest.mark.parametrize("path", ["//evil.test", "https://evil.test", "/\\evil.test", "/%2F%2Fevil.test"])
async def test_open_redirect_in_the_login_next_field_goes_to_the_ticket_list(
    client: Client, db: Database, settings: Settings, path: str
) -> None:
    await add_contact(db)
    await post_form(client, "/login", {"email": "alice@example.test", "next": path})
    [sent] = await sent_signin_emails(db, settings)
    response = await post_form(client, f"/l/{sent.token}", {})
    assert response.headers["Location"] == "/tickets"
