"""Outbound emails start from `new_email()`: the standard policy's bytes, header work done once."""

from __future__ import annotations

from email import message_from_bytes
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8, default

from gateway.outbound.mime import OUTBOUND, new_email, text_and_html


def _fill(email: EmailMessage) -> EmailMessage:
    email["From"] = Address("Acme Support", addr_spec="support@example.test")
    email["To"] = [Address("Zoë Müller", addr_spec="zoe@customer.test"), Address("", addr_spec="bo@customer.test")]
    email["Subject"] = "Re: [#1001] Drücker auf Etage 3 klemmt, und das schon seit einer ganzen Weile, bitte helfen"
    email["Message-ID"] = "<abc@example.test>"
    email.set_content("Hallo Zoë,\n\nwir kümmern uns darum.\n")
    email.add_alternative("<p>Hallo Zoë,</p><p>wir kümmern uns darum.</p>", subtype="html")
    email.set_boundary("fixed-for-the-comparison")
    return email


def test_an_outbound_email_serializes_exactly_as_under_the_default_policy() -> None:
    assert _fill(new_email()).as_bytes(policy=SMTP) == _fill(EmailMessage()).as_bytes(policy=SMTP)


def test_the_same_email_serializes_the_same_again_and_under_other_line_settings() -> None:
    # Each header keeps its folded text per line length, separator and UTF-8 setting.
    ours, standard = _fill(new_email()), _fill(EmailMessage())
    for policy in (SMTP, SMTP, SMTPUTF8, SMTP.clone(max_line_length=40), default, SMTP):
        assert ours.as_bytes(policy=policy) == standard.as_bytes(policy=policy), policy


def test_emails_that_share_header_values_serialize_each_as_under_the_default_policy() -> None:
    values = [
        "Re: [#1001] Drücker klemmt", "Re: [#1001] Drücker klemmt", "  two  spaces  ", "=?utf-8?q?not_ours?=",
        "a" * 200, "", "Re: [#7] " + "lang " * 30,
    ]
    for value in values:
        ours, standard = new_email(), EmailMessage()
        for email in (ours, standard):
            email["Subject"] = value
            email["Reply-To"] = "support+t.1.abc@example.test"
            email.set_content("Hallo\n")
        assert ours.as_bytes(policy=SMTP) == standard.as_bytes(policy=SMTP), value


def test_a_repeated_header_value_is_parsed_once() -> None:
    first, second = new_email(), new_email()
    first["MIME-Version"], second["MIME-Version"] = "1.0", "1.0"
    assert first["MIME-Version"] is second["MIME-Version"]


def test_each_header_class_is_made_once_not_per_header() -> None:
    first, again = OUTBOUND.header_factory["Subject"], OUTBOUND.header_factory["subject"]
    assert first is again
    assert OUTBOUND.header_factory["To"] is not first


def test_text_and_html_is_a_multipart_alternative_under_a_random_boundary() -> None:
    first, second = new_email(), new_email()
    for email in (first, second):
        text_and_html(email, "Hallo\n", "<p>Hallo</p>")
    assert first.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in first.iter_parts()] == ["text/plain", "text/html"]
    assert first.get_body(("plain",)).get_content() == "Hallo\n"
    assert len(first.get_boundary()) == 34 and first.get_boundary() != second.get_boundary()
    parsed = message_from_bytes(first.as_bytes(policy=SMTP), policy=default)
    assert parsed.get_body(("html",)).get_content() == "<p>Hallo</p>\r\n"  # as sent, CRLF
