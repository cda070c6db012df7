"""The command line loads only what the command it runs needs, so `wicket --help` and a
quick `wicket tickets list` start in a fraction of a second.

Each case runs `wicket …` as a whole process and reads the modules it had loaded when it
exited; the timings themselves are a benchmark row (bench/cli_bench.py), since a test on
a shared machine cannot time a process reliably.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

PROBE = """
import atexit, json, sys
out = sys.argv.pop()
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["wicket", *sys.argv[1:]]
from gateway.cli.main import main
main()
"""
# Heavy libraries and whole layers of Wicket that neither command below has any use for.
SERVING = ("aiosmtpd", "aiohttp", "aiosmtplib", "jinja2", "mailparser", "nh3", "dkim", "markdown_it", "alembic",
           "portal", "gateway.inbound", "gateway.outbound", "gateway.mail", "gateway.help", "gateway.auth")


def loaded(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> set[str]:
    out = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", PROBE, *args, str(out)], env=env, capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(out.read_text()))


def among(modules: set[str], names: tuple[str, ...]) -> set[str]:
    return {name for name in names if any(m == name or m.startswith(name + ".") for m in modules)}


def test_help_loads_click_and_nothing_of_the_domain_or_the_database(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "--help")
    assert "click" in modules
    assert among(modules, ("sqlalchemy", "pydantic", "rich", "asyncio", "gateway.models", "gateway.storage",
                           "gateway.settings", *SERVING)) == set()


@pytest.fixture
def empty_database(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "WICKET_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
           "WICKET_VAR_DIR": str(tmp_path / "var"), "WICKET_SECRET_KEYS": '["cli-imports-key"]'}
    subprocess.run([sys.executable, "-m", "gateway", "db", "upgrade"], env=env, check=True, capture_output=True,
                   timeout=120)
    return env


def test_tickets_list_loads_the_tables_and_the_query_but_no_listener_parser_or_alembic(
    tmp_path: Path, empty_database: dict[str, str]
) -> None:
    modules = loaded(tmp_path, "tickets", "list", env=empty_database)
    assert {"gateway.tickets.queries", "sqlalchemy"} <= modules
    assert among(modules, SERVING) == set()


def test_only_the_db_commands_load_alembic(tmp_path: Path, empty_database: dict[str, str]) -> None:
    assert "alembic" in loaded(tmp_path, "db", "upgrade", env=empty_database)


def test_the_status_choices_of_tickets_list_are_the_ticket_statuses() -> None:
    from gateway.cli.tickets import TICKET_STATUSES
    from gateway.models import TicketStatus

    assert set(TICKET_STATUSES) == {status.value for status in TicketStatus}


def test_the_listing_describes_each_command_by_its_own_first_sentence() -> None:
    from gateway.cli.main import COMMANDS, main

    context = click.Context(main)
    for name, (_module, _attribute, listed) in COMMANDS.items():
        command = main.get_command(context, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(limit=1000) == listed, f"`wicket --help` describes {name} otherwise"
