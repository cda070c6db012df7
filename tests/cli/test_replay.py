"""`wicket replay` as a developer meets it: a fresh install, no mail sent, one line per message."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from gateway.cli.main import main
from tests.support import FIXTURES

CORPUS = FIXTURES.parent / "corpus"


class FreshInstall:
    """`wicket` run in-process against a new SQLite file, with no secret key configured."""

    def __init__(self, tmp_path: Path) -> None:
        self.database = tmp_path / "fresh.db"
        self.env: dict[str, str | None] = {
            "WICKET_DATABASE_URL": f"sqlite+aiosqlite:///{self.database}",
            "WICKET_VAR_DIR": str(tmp_path / "var"),
            "WICKET_SECRET_KEYS": None,  # unset: a fresh install has no key configured
            "WICKET_SENDER_CHECKS": "false",  # no DNS from tests
        }

    def __call__(self, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(main, list(args), env=self.env)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
        return result.exit_code, result.stdout, result.stderr

    def outbox_rows(self) -> int:
        with sqlite3.connect(self.database) as connection:
            return connection.execute("SELECT count(*) FROM outbox_message").fetchone()[0]


def test_replay_works_on_a_fresh_install_and_mails_nobody(tmp_path: Path) -> None:
    wicket = FreshInstall(tmp_path)
    assert wicket("db", "upgrade")[0] == 0
    assert wicket("mailbox", "add", "support@example.test", "--name", "Example Support")[0] == 0
    code, output, errors = wicket("replay", str(FIXTURES))
    assert code == 0, output + errors
    assert "Traceback" not in output + errors
    assert wicket.outbox_rows() == 0  # no acknowledgement, no agent notification


def test_replay_sends_mail_only_when_asked(tmp_path: Path) -> None:
    wicket = FreshInstall(tmp_path)
    wicket("db", "upgrade")
    wicket("mailbox", "add", "support@example.test")
    code, output, errors = wicket("replay", "--send-mail", str(FIXTURES / "new-request.eml"))
    assert code == 0, output + errors
    assert wicket.outbox_rows() == 1  # the acknowledgement to the customer


def test_a_refused_message_fails_the_replay_and_says_how_to_fix_it(tmp_path: Path) -> None:
    wicket = FreshInstall(tmp_path)
    wicket("db", "upgrade")
    code, output, errors = wicket("replay", str(FIXTURES / "new-request.eml"))
    assert code != 0
    assert "no mailbox for support@example.test: run `wicket mailbox add support@example.test`" in output + errors


def test_replay_into_a_database_that_was_never_migrated_says_so(tmp_path: Path) -> None:
    wicket = FreshInstall(tmp_path)
    code, output, errors = wicket("replay", str(FIXTURES / "new-request.eml"))
    assert code != 0
    assert "wicket db upgrade" in output + errors
    assert "Traceback" not in output + errors


def test_replay_json_prints_one_line_per_message_with_its_outcome_and_ticket(tmp_path: Path) -> None:
    wicket = FreshInstall(tmp_path)
    wicket("db", "upgrade")
    wicket("mailbox", "add", "support@example.test")
    files = [FIXTURES / "new-request.eml", FIXTURES / "reply-gmail.eml", FIXTURES / "new-request.eml"]
    wicket("replay", str(files[0]))  # the third file is then a duplicate of the first
    code, output, _ = wicket("replay", "--json", *map(str, files[1:]))
    assert code == 0
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["file"] for line in lines] == ["reply-gmail.eml", "new-request.eml"]
    gmail, again = lines
    assert gmail["outcome"] == "delivered" and gmail["ticket"] == 1001 and gmail["rule"] == "headers"
    assert gmail["classification"] == "normal" and gmail["message_id"]
    assert again["outcome"] == "duplicate" and again["ticket"] == 1001


def test_replay_json_names_the_mailbox_missing_for_a_refused_message(tmp_path: Path) -> None:
    wicket = FreshInstall(tmp_path)
    wicket("db", "upgrade")
    code, output, _ = wicket("replay", "--json", str(FIXTURES / "new-request.eml"))
    assert code != 0
    (line,) = [json.loads(line) for line in output.splitlines()]
    assert line["outcome"] == "refused" and line["ticket"] is None
    assert "wicket mailbox add support@example.test" in line["error"]


def test_tickets_show_json_carries_what_a_test_asserts_on(tmp_path: Path) -> None:
    wicket = FreshInstall(tmp_path)
    wicket("db", "upgrade")
    wicket("mailbox", "add", "support@example.test")
    wicket("replay", str(FIXTURES / "new-request.eml"), str(FIXTURES / "reply-gmail.eml"))
    shown = json.loads(wicket("tickets", "show", "1001", "--json")[1])
    first, reply = shown["messages"]
    assert first["message_id"] and reply["thread_rule"] == "headers"
    headers = {header["name"].lower(): header["value"] for header in reply["headers"]}
    assert headers["in-reply-to"] == first["message_id"] or first["message_id"] in headers["references"]
    assert headers["subject"] == reply["subject"]


def test_replay_turns_an_outlook_msg_file_into_the_ticket_it_holds(tmp_path: Path) -> None:
    wicket = FreshInstall(tmp_path)
    wicket("db", "upgrade")
    wicket("mailbox", "add", "support@example.test")
    item = CORPUS / "poi" / "example_received_unicode.msg"
    code, output, errors = wicket("replay", "--json", "--to", "support@example.test", str(item))
    assert code == 0, output + errors
    (line,) = [json.loads(line) for line in output.splitlines()]
    assert (line["file"], line["outcome"], line["ticket"]) == ("example_received_unicode.msg", "delivered", 1001)
    shown = json.loads(wicket("tickets", "show", "1001", "--json")[1])
    assert (shown["subject"], shown["requester"]) == ("This is a test message please ignore", "mike.farman@alfresco.com")
    (message,) = shown["messages"]
    assert "The quick brown fox jumps over the lazy dog" in message["body_text"]
    assert [file["filename"] for file in message["attachments"]] == ["alfresco.gif"]
    headers = {header["name"].lower(): header["value"] for header in message["headers"]}
    assert headers["date"].startswith("Mon, 11 Jan 2010 16:25:07")


def test_replay_refuses_a_msg_file_it_cannot_read_and_says_why(tmp_path: Path) -> None:
    wicket = FreshInstall(tmp_path)
    wicket("db", "upgrade")
    wicket("mailbox", "add", "support@example.test")
    damaged = tmp_path / "damaged.msg"
    damaged.write_bytes((CORPUS / "poi" / "simple_test_msg.msg").read_bytes()[:3000])
    code, output, _ = wicket("replay", "--json", "--to", "support@example.test", str(damaged))
    assert code != 0
    (line,) = [json.loads(line) for line in output.splitlines()]
    assert line["outcome"] == "refused" and line["error"].startswith("not a readable Outlook .msg file (")
