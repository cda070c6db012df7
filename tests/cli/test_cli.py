"""The `wicket` command line, run in-process against a fresh SQLite file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli.main import main
from tests.support import FIXTURES


@pytest.fixture
def wicket(tmp_path: Path):
    env = {
        "WICKET_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "WICKET_VAR_DIR": str(tmp_path / "var"),
        "WICKET_SECRET_KEYS": '["cli-test-key"]',
        "WICKET_SENDER_CHECKS": "false",  # no DNS from tests (the checks have tests/inbound/test_sender_verdicts.py)
    }
    runner = CliRunner()

    def run(*args: str, expect_failure: bool = False) -> str:
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        assert (result.exit_code != 0) == expect_failure, result.output
        return result.output if expect_failure else result.stdout

    run("db", "upgrade")
    return run


def test_replay_turns_a_fixture_directory_into_tickets(wicket) -> None:
    wicket("mailbox", "add", "support@example.test", "--name", "Example Support")
    lines = [json.loads(line) for line in wicket("replay", "--json", str(FIXTURES)).splitlines()]
    assert len(lines) == len(list(FIXTURES.glob("*.eml")))
    assert not [line for line in lines if line["outcome"] == "refused"]  # Delivered-To routes list mail and loops too
    tickets = json.loads(wicket("tickets", "list", "--json", "--limit", "500"))
    # Files replay in name order, so the tag [#1001] in one of Alice's replies names another ticket.
    printer = max((t for t in tickets if t["requester"] == "alice@customer.test"), key=lambda t: t["messages"])
    shown = json.loads(wicket("tickets", "show", str(printer["ref"]), "--json"))
    assert shown["subject"] == "Printer on floor 3 is jammed"
    rules = [m["thread_rule"] for m in shown["messages"] if m["author_type"] == "customer"]
    assert rules[0] == "new" and "headers" in rules


def test_replaying_the_same_files_twice_adds_only_duplicates(wicket) -> None:
    wicket("mailbox", "add", "support@example.test")
    files = [str(FIXTURES / "new-request.eml"), str(FIXTURES / "reply-gmail.eml")]
    wicket("replay", *files)
    again = wicket("replay", *files)
    assert "duplicates 2" in again
    assert len(json.loads(wicket("tickets", "list", "--json"))) == 1


def test_replay_reads_mbox_files(wicket, tmp_path: Path) -> None:
    wicket("mailbox", "add", "support@example.test")
    mbox = tmp_path / "export.mbox"
    with mbox.open("wb") as out:
        for name in ["new-request.eml", "same-subject-other-sender.eml"]:
            out.write(b"From MAILER-DAEMON Thu Nov  5 10:00:00 2026\n")
            out.write((FIXTURES / name).read_bytes().rstrip(b"\n") + b"\n\n")
    output = wicket("replay", "--to", "support@example.test", str(mbox))
    assert "replayed 2 messages: delivered 2, refused 0" in output
    assert len(json.loads(wicket("tickets", "list", "--json"))) == 2


def test_mailbox_add_rejects_addresses_that_are_not_plain(tmp_path: Path, wicket) -> None:
    result = CliRunner().invoke(
        main, ["mailbox", "add", "support+x@example.test"],
        env={"WICKET_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"},
    )
    assert result.exit_code != 0
    assert "not a plain mailbox address" in result.output


def test_status_shows_backlog_and_the_last_failure(wicket) -> None:
    wicket("mailbox", "add", "support@example.test")
    wicket("replay", str(FIXTURES / "new-request.eml"))
    output = wicket("status")
    assert "inbound backlog" in output and "outbox depth" in output


def test_link_issue_prints_a_portal_link_for_a_known_contact(wicket) -> None:
    wicket("mailbox", "add", "support@example.test")
    wicket("replay", str(FIXTURES / "new-request.eml"))
    url = wicket("link", "issue", "alice@customer.test", "--ticket", "1001").strip()
    assert url.startswith("http://127.0.0.1:8080/l/")
    assert len(url.rsplit("/", 1)[1]) >= 40


def test_agent_added_on_the_command_line_can_reply_to_a_ticket(wicket) -> None:
    wicket("mailbox", "add", "support@example.test")
    wicket("replay", str(FIXTURES / "new-request.eml"))
    assert "agent tom@example.test is ready" in wicket("agents", "add", "tom@example.test", "--name", "Tom Agent")
    assert "reply queued" in wicket("reply", "1001", "--as", "tom@example.test", "Try tray 2, please.")
    assert "internal note" in wicket("reply", "#1001", "--as", "tom@example.test", "#internal\nCalled facilities.")
    shown = json.loads(wicket("tickets", "show", "1001", "--json"))
    agent_messages = [m for m in shown["messages"] if m["author_type"] == "agent"]
    assert [m["internal"] for m in agent_messages] == [False, True]


def test_dkim_keygen_prints_the_txt_record_and_keeps_an_existing_key(wicket) -> None:
    first = wicket("dkim", "keygen", "example.test")
    assert first.startswith("wicket._domainkey.example.test. IN TXT")
    assert "v=DKIM1" in first and "p=" in first
    assert wicket("dkim", "keygen", "example.test") == first


def test_articles_accounts_and_brand_are_managed_from_the_command_line(wicket) -> None:
    wicket("mailbox", "add", "support@example.test")
    articles = FIXTURES.parent / "articles"
    first = wicket("articles", "import", str(articles))
    assert first.startswith("created 5,")  # README.md describes the folder; it is no article
    assert "created 0," in wicket("articles", "import", str(articles))
    wicket("accounts", "add", "Customer Ltd", "--domain", "customer.test", "--share")
    wicket("accounts", "member", "add", "Customer Ltd", "bob@example.org")
    listed = wicket("accounts", "list")
    assert "Customer Ltd  (shares tickets)" in listed and "customer.test" in listed and "bob@example.org" in listed
    assert "updated" in wicket("mailbox", "brand", "support@example.test", "--name", "Acme Help", "--primary", "#112233")


def test_agents_and_mailboxes_can_be_listed_and_an_agent_removed(wicket) -> None:
    wicket("mailbox", "add", "support@example.test", "--name", "Example Support")
    wicket("mailbox", "add", "sales@example.test", "--name", "Sales")
    wicket("agents", "add", "tom@example.test", "--name", "Tom Agent", "--mailbox", "support@example.test")
    wicket("agents", "add", "sam@example.test", "--name", "Sam")
    assert json.loads(wicket("mailbox", "list", "--json")) == [
        {"address": "sales@example.test", "name": "Sales"},
        {"address": "support@example.test", "name": "Example Support"},
    ]
    listed = json.loads(wicket("agents", "list", "--json"))
    assert listed == [
        {"email": "sam@example.test", "name": "Sam", "active": True,
         "mailboxes": ["sales@example.test", "support@example.test"]},
        {"email": "tom@example.test", "name": "Tom Agent", "active": True, "mailboxes": ["support@example.test"]},
    ]
    assert "tom@example.test" in wicket("agents", "list")

    assert "tom@example.test is removed" in wicket("agents", "remove", "tom@example.test")
    tom = next(a for a in json.loads(wicket("agents", "list", "--json")) if a["email"] == "tom@example.test")
    assert tom["active"] is False
    assert "no active agent nobody@example.test" in wicket("agents", "remove", "nobody@example.test", expect_failure=True)


def test_wicket_reply_attaches_files_and_tickets_show_lists_every_messages_files(wicket, tmp_path: Path) -> None:
    wicket("mailbox", "add", "support@example.test")
    wicket("replay", str(FIXTURES / "attachments-encoded-names.eml"))
    wicket("agents", "add", "tom@example.test", "--name", "Tom Agent")
    pdf = tmp_path / "credit-note.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + b"2" * 300)
    assert "reply queued" in wicket("reply", "1001", "--as", "tom@example.test", "--attach", str(pdf),
                                    "The credit note is attached.")

    shown = json.loads(wicket("tickets", "show", "1001", "--json"))
    customer, reply = shown["messages"][0], shown["messages"][-1]
    assert customer["attachments"], "the customer's files are listed"
    assert reply["attachments"] == [{
        "filename": "credit-note.pdf", "content_type": "application/pdf", "size": 309, "inline": False,
        "sha256": hashlib.sha256(pdf.read_bytes()).hexdigest(),
    }]
    assert "credit-note.pdf (application/pdf, 309 bytes, sha256" in wicket("tickets", "show", "1001")


def test_wicket_reply_refuses_a_file_it_cannot_send_and_says_why(wicket, tmp_path: Path) -> None:
    wicket("mailbox", "add", "support@example.test")
    wicket("replay", str(FIXTURES / "new-request.eml"))
    wicket("agents", "add", "tom@example.test", "--name", "Tom Agent")
    program = tmp_path / "setup.exe"
    program.write_bytes(b"MZ")
    refused = wicket("reply", "1001", "--as", "tom@example.test", "--attach", str(program), "Run this.",
                     expect_failure=True)
    assert "setup.exe: files of this type cannot be attached" in refused and "Traceback" not in refused
    missing = wicket("reply", "1001", "--as", "tom@example.test", "--attach", str(tmp_path / "nope.pdf"), "Hi.",
                     expect_failure=True)
    assert "cannot read" in missing and "Traceback" not in missing
    shown = json.loads(wicket("tickets", "show", "1001", "--json"))
    assert [m["author_type"] for m in shown["messages"]] == ["customer"], "nothing was stored"


def test_routes_and_webhooks_are_managed_from_the_command_line(wicket) -> None:
    wicket("mailbox", "add", "support@example.test")
    added = wicket("webhooks", "add", "http://127.0.0.1:9/hook", "--event", "ticket.created")
    endpoint = added.split()[1]
    assert "signing secret: whsec_" in added
    assert wicket("webhooks", "secret", endpoint).strip() == added.split("signing secret: ")[1].split()[0]
    route = wicket("routes", "add", "plus", "support@example.test", "--webhook", endpoint, "--raw").split()[1]
    listed = wicket("routes", "list")
    assert f"{route}   100  plus support@example.test -> ticket in support@example.test, webhook {endpoint} (raw)" in listed
    assert "not an address" in wicket("routes", "add", "exact", "nobody", "--webhook", endpoint, expect_failure=True)
    assert "needs an action" in wicket("routes", "add", "domain", "example.org", expect_failure=True)
    assert "remove them first" in wicket("webhooks", "remove", endpoint, expect_failure=True)
    assert "new signing secret: whsec_" in wicket("webhooks", "rotate-secret", endpoint)
    failed = wicket("webhooks", "test", endpoint, expect_failure=True)  # nothing listens on port 9
    assert "retrying" in failed and "did not accept" in failed
    [row] = json.loads(wicket("webhooks", "list", "--json"))
    assert (row["id"], row["pending"], row["dead"]) == (endpoint, 1, 0)
    assert "retrying after 1" in wicket("webhooks", "events")
    assert "1 event(s) queued again" in wicket("webhooks", "redeliver", wicket("webhooks", "events").split()[0])
    wicket("routes", "remove", route)
    assert "no routes" in wicket("routes", "list")
    assert f"endpoint {endpoint} is removed" in wicket("webhooks", "remove", endpoint)


@pytest.mark.parametrize(("group", "hint"), [
    ("mailbox", "no mailboxes yet; add one with `wicket mailbox add"),
    ("agents", "no agents yet; add one with `wicket agents add"),
    ("routes", "no routes: mail to each mailbox address makes tickets; add one with `wicket routes add`"),
    ("webhooks", "no webhook endpoints; add one with `wicket webhooks add URL`"),
])
def test_an_empty_list_says_how_to_add_the_first_and_its_json_is_an_empty_list(wicket, group: str, hint: str) -> None:
    assert wicket(group, "list").strip().startswith(hint)
    assert json.loads(wicket(group, "list", "--json")) == []


@pytest.mark.parametrize(("group", "identifier", "answer"), [
    ("agents", "nobody@example.test", "no active agent nobody@example.test; add one with `wicket agents add`"),
    ("routes", "abcdefghijklmnop", "no route 'abcdefghijklmnop'; `wicket routes list` shows them"),
    ("webhooks", "abcdefghijklmnop", "no webhook endpoint 'abcdefghijklmnop'; `wicket webhooks list` shows them"),
])
def test_removing_an_unknown_id_fails_with_one_line_that_says_where_to_look(
    wicket, group: str, identifier: str, answer: str
) -> None:
    refused = wicket(group, "remove", identifier, expect_failure=True)
    assert refused.strip() == f"Error: {answer}"
