"""The built wheel is a working Wicket on its own: installed into a fresh virtualenv outside
the checkout, `wicket --help`, `wicket db upgrade` and `wicket mailbox add` work from an
empty directory, so nothing at runtime may read files relative to the source tree.

The wheel is built from a copy of exactly the files the Dockerfile's builder stage gets,
so a build that only works in the checkout fails here. The fresh virtualenv reuses the
test environment's installed dependencies through a .pth file (appended after its own
site-packages, so the wheel's `gateway` wins) instead of downloading them again; `pip
check` then proves the wheel's declared dependencies are met by what is importable.

The example integration in examples/webhook-receiver runs its own tests in that virtualenv
too, from a copy outside the checkout: Wicket's pytest plugin, as the wheel registers it,
is all it has.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from gateway.models import Base

ROOT = Path(__file__).resolve().parents[2]
# What the Dockerfile's builder stage copies; tests/cli/test_deployment_files.py holds it to that.
BUILD_INPUTS = ("pyproject.toml", "README.md", "gateway", "portal")

pytestmark = pytest.mark.slow


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def _build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, source], cwd=tmp_path)
    (wheel,) = dist.glob("wicket-*.whl")
    return wheel


def _fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", wheel], cwd=tmp_path)
    where = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path)
    site_packages = Path(where.stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "zz_test_dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(ours)))
    return venv


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the built wheel in it (built once for this module)."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    return _fresh_venv(tmp_path, _build_wheel(tmp_path))


def _clean_env() -> dict[str, str]:
    inherited = ("WICKET_", "PYTHON", "VIRTUAL_ENV")  # nothing of the test run's settings or paths leaks in
    return {key: value for key, value in os.environ.items() if not key.startswith(inherited)}


def test_the_wheel_installed_outside_the_checkout_migrates_and_adds_a_mailbox(installed: Path, tmp_path: Path) -> None:
    venv = installed
    python, wicket = venv / "bin" / "python", venv / "bin" / "wicket"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    database = tmp_path / "wicket.db"
    env = _clean_env()
    env["WICKET_DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    env["WICKET_SENDER_CHECKS"] = "false"  # no DNS from tests

    located = _run([python, "-c", "import gateway; print(gateway.__file__)"], cwd=elsewhere, env=env).stdout
    assert Path(located.strip()).is_relative_to(venv), located
    _run([python, "-m", "pip", "check"], cwd=elsewhere, env=env)

    assert re.search(r"^\s+db\s", _run([wicket, "--help"], cwd=elsewhere, env=env).stdout, re.MULTILINE)
    _run([wicket, "db", "upgrade"], cwd=elsewhere, env=env)
    _run([wicket, "mailbox", "add", "support@example.test", "--name", "X"], cwd=elsewhere, env=env)
    _run([wicket, "mailbox", "brand", "support@example.test", "--language", "de"], cwd=elsewhere, env=env)

    package = Path(located.strip()).parent
    for language in ("de", "fr", "es", "ar"):  # the catalogs ship, and the installed package speaks them
        assert (package / "i18n" / "locale" / language / "LC_MESSAGES" / "messages.po").is_file()
    spoken = "from gateway.i18n import translator; print(translator('de').gettext('Sign in'))"
    assert _run([python, "-c", spoken], cwd=elsewhere, env=env).stdout.strip() == "Anmelden"

    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert set(Base.metadata.tables) | {"alembic_version"} <= tables, tables
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() is not None
        mailboxes = connection.execute("SELECT address, name FROM mailbox").fetchall()
        assert mailboxes == [("support@example.test", "X")]
        assert connection.execute("SELECT language FROM mailbox").fetchone() == ("de",)


def test_the_example_integration_passes_with_the_plugin_of_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    example = tmp_path / "webhook-receiver"
    shutil.copytree(ROOT / "examples" / "webhook-receiver", example,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    python = installed / "bin" / "python"
    result = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=example, env=_clean_env())
    assert "2 passed" in result.stdout, result.stdout
    plugins = _run([python, "-c", "import gateway.testing.plugin as p; print(p.__file__)"], cwd=example, env=_clean_env())
    assert Path(plugins.stdout.strip()).is_relative_to(installed), plugins.stdout
