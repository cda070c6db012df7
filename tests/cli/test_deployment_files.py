"""docker-compose.yml and the Dockerfile agree with the code: checked without Docker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gateway.settings import Settings
from tests.cli.test_wheel import BUILD_INPUTS

ROOT = Path(__file__).resolve().parents[2]


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


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions, one list per FROM stage (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("FROM "):
            stages.append([])
        if line and not line.startswith("#"):
            stages[-1].append(line)
    return stages


def copies(stage: list[str]) -> list[tuple[list[str], list[str], str]]:
    """Each COPY of a stage as (flags, sources, destination)."""
    found = []
    for line in stage:
        if line.startswith("COPY "):
            words = line.split()[1:]
            flags = [word for word in words if word.startswith("--")]
            paths = [word for word in words if not word.startswith("--")]
            found.append((flags, paths[:-1], paths[-1]))
    return found


def test_dockerfile_copies_only_what_exists() -> None:
    for stage in dockerfile_stages():
        for flags, sources, _ in copies(stage):
            if not any(flag.startswith("--from=") for flag in flags):
                for source in sources:
                    assert (ROOT / source).exists(), source


def test_the_image_installs_the_built_wheel_and_copies_nothing_else_from_the_checkout() -> None:
    *builders, final = dockerfile_stages()
    assert builders, "the wheel is built in a stage of its own"
    assert copies(final), "the final stage installs something"
    for flags, sources, destination in copies(final):
        assert any(flag.startswith("--from=") for flag in flags), ("copied from the checkout", sources)
        assert sources == ["/dist/"], sources
    wheels = re.escape(copies(final)[0][2])
    assert any(re.match(rf"RUN pip install {wheels}\S*\.whl", line) for line in final), final
    # The builder gets exactly what tests/cli/test_wheel.py builds the tested wheel from.
    built_from = {source.rstrip("/") for stage in builders for _, sources, _ in copies(stage) for source in sources}
    assert built_from == set(BUILD_INPUTS)
    assert any("pip wheel" in line and "--wheel-dir /dist" in line for stage in builders for line in stage)
