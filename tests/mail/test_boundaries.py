"""Multiparts whose declared boundary is not the one their delimiter lines use.

A typo, a different quoting or a boundary parameter that fell off a badly folded header
used to leave the stdlib parser with one unsplit body, shown to customer and agents as raw
MIME lines. The delimiter actually used is now found in the body and the parts read.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gateway.cli.runtime import Gateway
from gateway.mail.parse import parse_email
from gateway.models import Message
from gateway.storage.database import orm
from tests.support import ReceiveEmail

HEAD = (
    b"From: Ilse Brandt <ilse@customer.test>\r\nTo: support@example.test\r\n"
    b"Subject: Invoice 4411\r\nMessage-ID: <boundary-1@customer.test>\r\nMIME-Version: 1.0\r\n"
)


def invoice_mail(content_type: bytes, delimiter: bytes) -> bytes:
    """A text part and a PDF, split by `delimiter`, under the given Content-Type header."""
    return (
        HEAD + content_type + b"\r\n\r\nThis is a multi-part message in MIME format.\r\n"
        b"--" + delimiter + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Hello, the invoice is attached. Kind regards, Ilse\r\n"
        b"--" + delimiter + b"\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="invoice-4411.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
        b"--" + delimiter + b"--\r\n"
    )


def assert_read_as_parts(raw: bytes) -> tuple[str, ...]:
    mail = parse_email(raw)
    assert mail.text.strip() == "Hello, the invoice is attached. Kind regards, Ilse"
    assert [(a.filename, a.data) for a in mail.attachments] == [("invoice-4411.pdf", b"%PDF-1.4\n")]
    assert "multipart boundary never found" not in mail.defects
    return mail.defects


def test_a_mistyped_boundary_is_recovered_from_the_delimiter_lines_the_parts_use() -> None:
    defects = assert_read_as_parts(
        invoice_mail(b'Content-Type: multipart/mixed; boundary="=_Part_7f3a"', b"=_Part_7f3b")
    )
    assert "multipart boundary recovered (declared '=_Part_7f3a', used '=_Part_7f3b')" in defects


def test_a_boundary_quoted_differently_in_the_header_is_recovered() -> None:
    defects = assert_read_as_parts(
        invoice_mail(b"Content-Type: multipart/mixed; boundary='b1_9xq'", b"b1_9xq")
    )
    assert "multipart boundary recovered (declared \"'b1_9xq'\", used 'b1_9xq')" in defects


def test_a_boundary_parameter_on_an_unfolded_line_is_recovered() -> None:
    # The client forgot to indent the continuation: the boundary is no longer a parameter.
    defects = assert_read_as_parts(invoice_mail(b"Content-Type: multipart/mixed;\r\nboundary=\"xyz-1\"", b"xyz-1"))
    assert "multipart boundary recovered (none declared, used 'xyz-1')" in defects


def test_a_delimiter_seen_once_is_recovered_when_it_matches_the_declared_boundary_but_for_8bit() -> None:
    # mikel/mail's utf8_multipart_boundary.eml: the stdlib reads the 8-bit boundary as U+FFFD.
    raw = (
        'Content-Type: multipart/alternative; boundary="bad-char-µ"\n\n--bad-char-µ\n'
        "Content-Type: text/html; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\nHello, world!\n"
    ).encode()
    mail = parse_email(raw)
    assert mail.text.strip() == "Hello, world!"
    assert any(defect.startswith("multipart boundary recovered") for defect in mail.defects)


def test_a_nested_alternative_with_a_mismatched_boundary_is_recovered() -> None:
    raw = (
        HEAD + b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
        b'--outer\r\nContent-Type: multipart/alternative; boundary="alt-0001"\r\n\r\n'
        b"--alt-0002\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe printer is offline.\r\n"
        b"--alt-0002\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>The printer is <b>offline</b>.</p>\r\n"
        b"--alt-0002--\r\n"
        b'--outer\r\nContent-Type: image/png; name="printer.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        b"iVBORw0KGgo=\r\n--outer--\r\n"
    )
    mail = parse_email(raw)
    assert mail.text.strip() == "The printer is offline."
    assert mail.html is not None and "<b>offline</b>" in mail.html
    assert [a.filename for a in mail.attachments] == ["printer.png"]
    assert "multipart boundary recovered (declared 'alt-0001', used 'alt-0002')" in mail.defects


def test_dashed_lines_without_part_headers_are_not_taken_for_a_boundary() -> None:
    # A signature separator and Outlook's quote header look like delimiters but open no part.
    body = (
        b"Please see below.\r\n--\r\nIlse\r\n-----Original Message-----\r\nFrom: Support\r\n"
        b"-----Original Message-----\r\nFrom: Ilse\r\n--Ilse\r\n\r\n--Ilse\r\n\r\n"
    )
    mail = parse_email(HEAD + b'Content-Type: multipart/mixed; boundary="never-used"\r\n\r\n' + body)
    assert "multipart boundary never found" in mail.defects
    assert not any("recovered" in defect for defect in mail.defects)
    assert mail.text == body.decode().replace("\r\n", "\n")


async def test_a_mail_with_a_mistyped_boundary_becomes_a_ticket_message_without_raw_mime(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    await receive_email(invoice_mail(b'Content-Type: multipart/mixed; boundary="=_Part_7f3a"', b"=_Part_7f3b"))

    def look(session: Session) -> Message:
        return session.execute(select(Message).options(selectinload(Message.attachments))).scalar_one()

    message = await gateway.db.read(orm(look))
    assert message.body_text.strip() == "Hello, the invoice is attached. Kind regards, Ilse"
    assert "Content-Type" not in message.body_text and "--=_Part" not in message.body_text
    assert [attachment.filename for attachment in message.attachments] == ["invoice-4411.pdf"]
    assert any(defect.startswith("multipart boundary recovered") for defect in message.defects)
