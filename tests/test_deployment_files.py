"""docker-compose.yml and the Dockerfile agree with the code: checked without Docker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_postgres_wicket_and_a_mail_catcher() -> None:
    services = compose()["services"]
    assert {"postgres", "wicket", "mailpit", "migrate"} <= set(services)
    assert services["wicket"]["build"] == "."
    assert services["wicket"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "2525:2525" in services["wicket"]["ports"]


def test_every_wicket_variable_in_compose_is_a_valid_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    environment = compose()["services"]["wicket"]["environment"]
    fields = set(Settings.model_fields)
    for name, value in environment.items():
        assert name.removeprefix("WICKET_").lower() in fields, name
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.outbound_sender == "smtp"


def test_dockerfile_copies_only_what_exists() -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if match := re.match(r"COPY (.+) \S+$", line):
            for source in match.group(1).split():
                assert (ROOT / source).exists(), source
