"""DKIM: keys per domain, the DNS record to publish, and signatures dkimpy accepts."""

from __future__ import annotations

import stat

from gateway.outbound.dkim import DkimSigner, key_path, keygen
from gateway.settings import Settings
from tests.mailflow import build_mail, dkim_valid


def outbound(settings: Settings) -> bytes:
    raw = build_mail(sender="Example Support <support@example.test>", to="alice@customer.test",
                     subject="[#1001] Printer", body="We are on it.\n")
    return raw.replace(b"\n", b"\r\n")


def test_keygen_writes_a_private_key_and_returns_the_txt_record(settings: Settings) -> None:
    record = keygen(settings, "Example.Test")
    assert record.created
    assert record.name == "wicket._domainkey.example.test"
    assert record.value.startswith("v=DKIM1; k=rsa; p=MII")
    path = key_path(settings, "example.test")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert record.zone_line().startswith('wicket._domainkey.example.test. IN TXT ( "v=DKIM1; k=rsa; p=')


def test_keygen_keeps_an_existing_key_so_the_published_record_stays_valid(settings: Settings) -> None:
    first = keygen(settings, "example.test")
    again = keygen(settings, "example.test")
    assert not again.created
    assert again.value == first.value


def test_signed_mail_verifies_against_the_published_key(settings: Settings) -> None:
    keygen(settings, "example.test")
    signed = DkimSigner(settings).sign(outbound(settings), "example.test")
    assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    assert b"d=example.test" in signed and b"s=wicket" in signed
    assert dkim_valid(settings, signed)


def test_a_changed_body_no_longer_verifies(settings: Settings) -> None:
    keygen(settings, "example.test")
    signed = DkimSigner(settings).sign(outbound(settings), "example.test")
    assert not dkim_valid(settings, signed.replace(b"We are on it.", b"Send me your password."))


def test_a_domain_without_a_key_is_sent_unsigned(settings: Settings) -> None:
    raw = outbound(settings)
    assert DkimSigner(settings).sign(raw, "example.test") == raw
