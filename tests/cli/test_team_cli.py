"""The team's command line: commands in `wicket reply`, ticket filters, `tickets show`, notification settings.

Runs in-process against a database of its own: a SQLite file, or with
WICKET_TEST_DATABASE_URL a PostgreSQL database, migrated by `wicket db upgrade`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli.main import main
from tests.support import FIXTURES

TOM, ANN = "tom@example.test", "ann@example.test"


@pytest.fixture
def wicket(tmp_path: Path, shared_url: str):
    env = {
        "WICKET_DATABASE_URL": shared_url,
        "WICKET_VAR_DIR": str(tmp_path / "var"),
        "WICKET_SECRET_KEYS": '["cli-test-key"]',
    }
    runner = CliRunner()

    def run(*args: str, expect_failure: bool = False) -> str:
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        assert (result.exit_code != 0) == expect_failure, result.output
        return result.output if expect_failure else result.stdout

    run("db", "upgrade")
    run("mailbox", "add", "support@example.test", "--name", "Example Support")
    run("agents", "add", TOM, "--name", "Tom Agent")
    run("agents", "add", ANN, "--name", "Ann Agent")
    run("replay", str(FIXTURES / "new-request.eml"), str(FIXTURES / "same-subject-other-sender.eml"))
    return run


def refs(output: str) -> list[int]:
    return sorted(ticket["ref"] for ticket in json.loads(output))


def test_wicket_reply_carries_out_commands_and_tickets_list_filters_by_them(wicket) -> None:
    assert "reply queued" in wicket("reply", "1001", "--as", TOM, "#assign me\n#priority high\n#tag printer\nOn it.")
    assert "internal note" in wicket("reply", "1001", "--as", TOM, "#internal\nCalled Alice.")
    refused = wicket("reply", "1002", "--as", TOM, "#asign me\nHello", expect_failure=True)
    assert "there is no command '#asign'" in refused and "Traceback" not in refused
    assert refs(wicket("tickets", "list", "--json", "--owner", TOM)) == [1001]
    assert refs(wicket("tickets", "list", "--json", "--owner", "tom agent")) == [1001]
    assert refs(wicket("tickets", "list", "--json", "--unassigned")) == [1002]
    assert refs(wicket("tickets", "list", "--json", "--status", "open", "--status", "pending")) == [1001, 1002]
    assert refs(wicket("tickets", "list", "--json", "--status", "resolved")) == []
    assert refs(wicket("tickets", "list", "--json", "--older-than", "2d")) == []
    assert refs(wicket("tickets", "list", "--json", "--older-than", "0m")) == [1001, 1002]
    assert "write an age like 90m, 12h, 3d or 2w" in wicket("tickets", "list", "--older-than", "soon",
                                                            expect_failure=True)
    [row] = [t for t in json.loads(wicket("tickets", "list", "--json")) if t["ref"] == 1001]
    assert (row["owner"], row["priority"], row["tags"]) == (TOM, "high", ["printer"])


def test_tickets_show_names_owner_priority_and_tags_and_marks_internal_notes(wicket) -> None:
    wicket("reply", "1001", "--as", TOM, "#tag printer\nTry tray 2, please.")
    wicket("reply", "1001", "--as", ANN, "#internal\nCalled facilities.")
    shown = wicket("tickets", "show", "1001")
    assert f"owner: {TOM} · priority: normal · tags: printer" in shown
    lines = shown.splitlines()

    def heading_of(text: str) -> str:
        """The rule line printed above a message."""
        return lines[lines.index(text) - 1]

    assert "INTERNAL NOTE" in heading_of("Called facilities.") and ANN in heading_of("Called facilities.")
    assert "INTERNAL NOTE" not in heading_of("Try tray 2, please.")
    detail = json.loads(wicket("tickets", "show", "1001", "--json"))
    assert (detail["owner"], detail["tags"]) == (TOM, ["printer"])
    assert [m["internal"] for m in detail["messages"] if m["from"] == ANN] == [True]


def test_agents_choose_their_notifications_and_the_mailbox_its_digest_hour(wicket) -> None:
    assert "support@example.test: mine, digest at 08:00 UTC" in wicket(
        "agents", "set-notify", ANN, "--policy", "mine", "--digest")
    assert "daily digest at 06:00 UTC" in wicket("mailbox", "digest", "support@example.test", "--hour", "6")
    assert "support@example.test: mine-and-unassigned, digest at 06:00 UTC" in wicket(
        "agents", "set-notify", ANN, "--policy", "mine-and-unassigned")
    assert "no digest" in wicket("agents", "set-notify", ANN, "--no-digest")
    assert "give --policy, --digest or --no-digest" in wicket("agents", "set-notify", ANN, expect_failure=True)
    assert "no active agent" in wicket("agents", "set-notify", "nobody@example.test", "--digest", expect_failure=True)
    assert "no mailbox sales@example.test" in wicket("mailbox", "digest", "sales@example.test", "--hour", "6",
                                                     expect_failure=True)
