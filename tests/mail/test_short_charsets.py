"""Short 8-bit text that declares no charset, or the wrong one, in several languages.

A detector needs more than a few bytes, so a short subject or body is read in this order:
UTF-8 when it decodes; then what the rest of the message says (a charset declared by
another part or header, or the charset detected in its longer text); then the shape of
the text itself (Cyrillic, Greek); else windows-1252, which reads western languages.
"""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from gateway.cli.runtime import Gateway
from gateway.mail.parse import parse_email
from gateway.models import Ticket
from gateway.storage.database import orm
from tests.support import ReceiveEmail


def mail(
    subject: bytes = b"Question",
    body: bytes = b"Hello\r\n",
    content_type: bytes = b"text/plain",
) -> bytes:
    return (
        b"From: customer@customer.test\r\nTo: support@example.test\r\nSubject: " + subject + b"\r\n"
        b"Message-ID: <short-1@customer.test>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: " + content_type + b"\r\n\r\n" + body
    )


def encoded_word(text: str, charset: str) -> bytes:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?=".encode()


WESTERN = [
    "Grüße",
    "Grüße aus Köln",
    "Merci beaucoup, à bientôt",
    "¿Dónde está mi pedido?",
    "Não recebi a fatura",
    "Hälsningar, Åsa",
    "Préstamo “urgente” – 250 €",
]
CYRILLIC = [
    "Счёт на оплату",
    "Не работает принтер",
    "Добрый день! Оплатили вчера.",
    "Дякую за відповідь",  # Ukrainian
    "Фактура за март",  # Bulgarian
    "СРОЧНО",
]


@pytest.mark.parametrize("text", ["Grüße", "Привет", "Καλημέρα", "お世話になります"])
def test_short_undeclared_utf8_is_read_as_utf8_without_a_defect(text: str) -> None:
    parsed = parse_email(mail(subject=text.encode(), body=text.encode()))
    assert (parsed.subject, parsed.text) == (text, text)
    assert not any("8-bit" in defect for defect in parsed.defects)


@pytest.mark.parametrize("text", WESTERN)
def test_short_undeclared_windows_1252_reads_as_written(text: str) -> None:
    parsed = parse_email(mail(subject=text.encode("cp1252"), body=text.encode("cp1252")))
    assert (parsed.subject, parsed.text) == (text, text)
    assert "8-bit text (undeclared) decoded as utf-8/windows-1252 in Subject header" in parsed.defects


@pytest.mark.parametrize("text", CYRILLIC)
def test_short_undeclared_windows_1251_with_no_charset_anywhere_reads_as_cyrillic(text: str) -> None:
    parsed = parse_email(mail(subject=text.encode("cp1251"), body=text.encode("cp1251")))
    assert (parsed.subject, parsed.text) == (text, text)
    assert "8-bit text (undeclared) detected as cp1251 in Subject header" in parsed.defects
    assert "8-bit text (undeclared) detected as cp1251" in parsed.defects


@pytest.mark.parametrize("text", ["Привет, принтер не печатает.", "Счёт не пришёл", "спасибо"])
def test_short_undeclared_koi8_r_reads_as_cyrillic(text: str) -> None:
    parsed = parse_email(mail(body=text.encode("koi8_r")))
    assert parsed.text == text
    assert "8-bit text (undeclared) detected as koi8_r" in parsed.defects


def test_short_undeclared_greek_reads_as_greek() -> None:
    text = "Καλημέρα, ο εκτυπωτής δεν λειτουργεί"
    assert parse_email(mail(body=text.encode("cp1253"))).text == text


@pytest.mark.parametrize(
    ("subject", "body", "charset"),
    [
        ("Faktura", "Dzień dobry, proszę o fakturę.", "iso-8859-2"),  # windows-1252 reads "Dzieñ"
        ("Καλημέρα", "Ο εκτυπωτής δεν λειτουργεί.", "windows-1253"),
        ("Děkujeme", "Děkuji za rychlou odpověď", "windows-1250"),
        ("Vielen Dank", "Grüße aus Köln", "iso-8859-1"),
    ],
)
def test_a_short_undeclared_body_takes_the_charset_its_subject_declares(subject: str, body: str, charset: str) -> None:
    parsed = parse_email(mail(subject=encoded_word(subject, charset), body=body.encode(charset)))
    assert (parsed.subject, parsed.text) == (subject, body)


def test_a_short_undeclared_text_part_takes_the_charset_its_html_sibling_declares() -> None:
    text = "Děkuji za rychlou odpověď"
    raw = mail(
        content_type=b'multipart/alternative; boundary="alt"',
        body=b"--alt\r\nContent-Type: text/plain\r\n\r\n" + text.encode("cp1250") + b"\r\n"
        b"--alt\r\nContent-Type: text/html; charset=windows-1250\r\n\r\n<p>"
        + text.encode("cp1250") + b"</p>\r\n--alt--\r\n",
    )
    parsed = parse_email(raw)
    assert parsed.text.strip() == text
    assert "8-bit text (undeclared) detected as cp1250" in parsed.defects


def test_a_short_raw_subject_takes_the_charset_detected_in_the_longer_undeclared_body() -> None:
    subject = "שלום, בעיה בהזמנה"
    body = "שלום רב, ההזמנה שלי לא הגיעה עדיין. אפשר לבדוק בבקשה מה קרה איתה? תודה רבה, דנה"
    parsed = parse_email(mail(subject=subject.encode("cp1255"), body=body.encode("cp1255")))
    assert (parsed.subject, parsed.text) == (subject, body)
    assert "8-bit text (undeclared) detected as cp1255 in Subject header" in parsed.defects


@pytest.mark.parametrize("label", [b"us-ascii", b"utf-8"])
def test_short_windows_1251_mislabelled_as_ascii_or_utf8_reads_as_cyrillic(label: bytes) -> None:
    text = "Не работает принтер"
    parsed = parse_email(mail(body=text.encode("cp1251"), content_type=b"text/plain; charset=" + label))
    assert parsed.text == text
    assert f"8-bit text (declared {label.decode()}) detected as cp1251" in parsed.defects


def test_a_western_charset_declared_elsewhere_keeps_a_short_raw_subject_western() -> None:
    # "Ñàëþò" would be the Cyrillic reading of these bytes; the body says the mail is western.
    subject = "Ñàëþò"
    parsed = parse_email(
        mail(subject=subject.encode("cp1252"), body="Olá".encode("latin-1"), content_type=b"text/plain; charset=iso-8859-1")
    )
    assert parsed.subject == subject


def test_utf8_lines_beside_latin1_lines_are_not_taken_for_a_legacy_charset() -> None:
    body = "Привет, это Анна\n".encode() + "Grüße aus Köln\n".encode("latin-1")
    parsed = parse_email(mail(body=body))
    assert parsed.text == "Привет, это Анна\nGrüße aus Köln\n"


def test_undeclared_text_never_gets_replacement_characters() -> None:
    parsed = parse_email(mail(subject=bytes(range(0x80, 0x100))[:40], body=bytes(range(0x80, 0x100))))
    assert "\ufffd" not in parsed.subject + parsed.text


def test_bytes_the_declared_charset_cannot_read_become_replacement_characters_with_a_defect() -> None:
    parsed = parse_email(mail(body=b"\x82\xa0 \x85\x40", content_type=b"text/plain; charset=shift_jis"))
    assert "\ufffd" in parsed.text
    assert "charset shift_jis had undecodable bytes" in parsed.defects


async def test_a_short_windows_1251_subject_becomes_the_ticket_subject(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    await receive_email(mail(subject="Счёт на оплату".encode("cp1251"), body=b"See attached.\r\n"))
    [ticket] = await gateway.db.read(orm(lambda session: list(session.execute(select(Ticket)).scalars())))
    assert ticket.subject == "Счёт на оплату"
