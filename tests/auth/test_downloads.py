"""Agent download tokens: each refusal is None with one log line naming why, never the token."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from gateway.auth.downloads import DownloadGrant, download_token, read_download_token
from gateway.models import utcnow
from gateway.settings import SecretKey

NEW, OLD = SecretKey.from_text("download-key-newest"), SecretKey.from_text("download-key-older")
FILE = "abcdefghijklmnop"


def test_a_token_names_the_file_and_the_agent_under_any_current_key() -> None:
    now = utcnow()
    for key in (NEW, OLD):
        token = download_token(key, FILE, 7, now + timedelta(hours=1))
        assert read_download_token((NEW, OLD), token, now) == DownloadGrant(FILE, 7)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda t: t + "x", "malformed"),
        (lambda t: "../" + t, "malformed"),
        (lambda t: t.replace(f".{NEW.kid}.", ".00000000."), "unknown key id"),
        (lambda t: t.replace(f"{FILE}.7.", f"{FILE}.8."), "bad signature"),
        (lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), "bad signature"),
    ],
)
def test_a_changed_token_is_refused_and_the_log_says_why_without_it(
    change: object, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = change(download_token(NEW, FILE, 7, utcnow() + timedelta(hours=1)))  # type: ignore[operator]
    assert read_download_token((NEW,), token, utcnow()) is None
    assert f"download link refused: {reason}" in caplog.text and token not in caplog.text


def test_an_expired_token_is_refused_before_any_signature_is_checked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    now = utcnow()
    token = download_token(NEW, FILE, 7, now + timedelta(seconds=10))
    assert read_download_token((NEW,), token, now + timedelta(seconds=10)) is None
    assert "download link refused: expired" in caplog.text
    unknown_key = download_token(SecretKey.from_text("gone"), FILE, 7, now - timedelta(seconds=1))
    assert read_download_token((NEW,), unknown_key, now) is None
    assert "unknown key id" not in caplog.text
