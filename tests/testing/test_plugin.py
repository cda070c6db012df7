"""The pytest plugin as a developer meets it: a test file in a project of their own.

Each test writes a small test module into a fresh directory (pytest's `pytester`) and runs
pytest on it in a subprocess, so only the installed plugin's fixtures are there, not this
suite's conftest.
"""

from __future__ import annotations

import pytest

from tests.support import FIXTURES

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _project(pytester: pytest.Pytester, tests: str) -> None:
    pytester.makeini(
        "[pytest]\n"
        "asyncio_mode = auto\n"
        "asyncio_default_fixture_loop_scope = function\n"
        f"wicket_fixtures = {FIXTURES}\n"
        "wicket_mailbox = support@example.test\n"
    )
    pytester.makepyfile(test_mail=tests)


def test_receive_email_takes_a_fixture_through_processing_to_a_ticket(pytester: pytest.Pytester) -> None:
    _project(pytester, '''
async def test_new_request(receive_email, sent_mail):
    received = await receive_email("new-request.eml")
    assert received.outcome == "delivered", received
    assert received.ticket_ref == 1001 and received.rule == "new"
    assert received.ticket["subject"] == "Printer on floor 3 is jammed"
    assert received.message["message_id"] == "new-request-1@customer.test"
    acknowledgement, = await sent_mail()
    assert acknowledgement["To"].addresses[0].addr_spec == "alice@customer.test"
    assert "[#1001]" in acknowledgement["Subject"]

async def test_a_reply_threads_and_a_second_copy_is_a_duplicate(receive_email):
    await receive_email("new-request.eml")
    reply = await receive_email("reply-gmail.eml")
    assert reply.ticket_ref == 1001 and reply.rule == "headers"
    again = await receive_email("reply-gmail.eml")
    assert again.outcome == "duplicate" and again.ticket_ref == 1001

async def test_bytes_and_email_messages_are_mail_too(receive_email):
    from email.message import EmailMessage
    message = EmailMessage()
    message["From"] = "Bob <bob@example.org>"
    message["To"] = "support@example.test"
    message["Subject"] = "Invoice question"
    message.set_content("Where is my invoice?")
    built = await receive_email(message)
    raw = await receive_email(message.as_bytes().replace(b"Invoice question", b"Another question"))
    assert (built.ticket_ref, raw.ticket_ref) == (1001, 1002)
    assert built.ticket["requester"] == "bob@example.org"

async def test_mail_to_an_unknown_mailbox_bounces(receive_email):
    received = await receive_email("new-request.eml", to="nobody@example.test")
    assert received.outcome == "bounced" and received.ticket is None
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_portal_client_is_signed_in_as_the_contact(pytester: pytest.Pytester) -> None:
    _project(pytester, '''
async def test_alice_sees_her_ticket(receive_email, portal_client):
    await receive_email("new-request.eml")
    client = await portal_client("alice@customer.test")
    page = await client.get("/tickets")
    assert page.status == 200
    assert "Printer on floor 3 is jammed" in await page.text()

async def test_a_stranger_cannot_be_signed_in(receive_email, portal_client):
    import pytest
    from gateway.cli.links import OperatorLinkError
    await receive_email("new-request.eml")
    with pytest.raises(OperatorLinkError):
        await portal_client("mallory@example.net")
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_missing_mail_file_is_a_clear_error(pytester: pytest.Pytester) -> None:
    _project(pytester, '''
async def test_typo(receive_email):
    await receive_email("no-such-file.eml")
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FileNotFoundError: no mail file no-such-file.eml (nor in *)*"])


def test_webhook_events_are_the_signed_events_the_worker_posted(pytester: pytest.Pytester) -> None:
    _project(pytester, '''
async def test_events(receive_email, webhook_events):
    await receive_email("new-request.eml")
    events = await webhook_events()
    kinds = [event["type"] for event in events]
    assert sorted(kinds) == ["message.received", "ticket.created"], kinds
    received = next(event for event in events if event["type"] == "message.received")
    assert received["data"]["subject"] == "Printer on floor 3 is jammed"
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_sender_checks_answer_from_dns_records_the_test_publishes(pytester: pytest.Pytester) -> None:
    _project(pytester, '''
async def test_spf_and_dmarc(wicket, receive_email):
    wicket.resolver.add("customer.test", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    wicket.resolver.add("_dmarc.customer.test", "TXT", "v=DMARC1; p=reject")
    passed = await receive_email("new-request.eml", peer="192.0.2.10:41000", helo="mail.customer.test")
    assert passed.message["sender_verdicts"]["dmarc"]["result"] == "pass"
    other = await receive_email("same-subject-other-sender.eml", peer="198.51.100.7:41000")
    assert other.message["sender_verdicts"]["spf"]["result"] == "none"
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_receive_email_takes_an_outlook_msg_file_as_the_message_it_holds(pytester: pytest.Pytester) -> None:
    item = FIXTURES.parent / "corpus" / "poi" / "simple_test_msg.msg"
    _project(pytester, f'''
from pathlib import Path

async def test_saved_outlook_mail(receive_email):
    by_path = await receive_email({str(item)!r}, to="support@example.test")
    assert by_path.outcome == "delivered", by_path
    assert by_path.ticket["subject"] == "test message"
    assert by_path.ticket["requester"] == "travis@overwrittenstack.com"
    assert by_path.message["body_text"].strip() == "This is a test message."
    by_bytes = await receive_email(Path({str(item)!r}).read_bytes(), to="support@example.test")
    assert by_bytes.outcome == "duplicate" and by_bytes.ticket_ref == by_path.ticket_ref
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
