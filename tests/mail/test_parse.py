"""Reading raw mail: fixtures in, ParsedEmail out (charsets, quotes, forwards, bounces, defects)."""

from __future__ import annotations

from email.message import EmailMessage
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mail.charsets import decode_bytes
from gateway.mail.parse import ParsedEmail, normalize_message_id, parse_email
from gateway.mail.forwards import find_inline_forward
from gateway.mail.html_quotes import split_reply_html
from gateway.mail.quotes import split_reply
from tests.support import FIXTURES, recombines

FIXTURE_NAMES = sorted(path.name for path in FIXTURES.glob("*.eml"))


@cache
def fixture(name: str) -> ParsedEmail:
    return parse_email((FIXTURES / name).read_bytes())


def build_mail(body: str = "Hello support,\n\nplease help.\n", **headers: str) -> bytes:
    """A small text/plain message; header names from keywords (Reply_To -> Reply-To)."""
    message = EmailMessage()
    message["From"] = "Alice Doe <alice@customer.test>"
    message["To"] = "support@example.test"
    message["Subject"] = "Help"
    message["Message-ID"] = "<built-1@customer.test>"
    for name, value in headers.items():
        del message[name.replace("_", "-")]
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


# Headers, addresses and ids


def test_new_request_has_ids_subject_sender_and_aware_utc_date() -> None:
    mail = fixture("new-request.eml")
    assert mail.message_id == "new-request-1@customer.test"
    assert mail.subject == "Printer on floor 3 is jammed"
    assert mail.sender is not None and mail.sender.email == "alice@customer.test"
    assert mail.sender.name == "Alice Doe"
    assert mail.date is not None and mail.date.utcoffset() is not None
    assert mail.date.isoformat() == "2026-11-03T09:41:07+00:00"
    assert not mail.malformed


def test_reply_ids_come_without_brackets_in_order() -> None:
    mail = fixture("reply-outlook.eml")
    assert mail.in_reply_to == ("CAGmail-reply-2@mail.gmail.com",)
    assert mail.references == ("new-request-1@customer.test", "CAGmail-reply-2@mail.gmail.com")


def test_headers_view_is_case_insensitive_and_keeps_every_value() -> None:
    mail = fixture("duplicate-b.eml")
    assert "message-id" in mail.headers and "X-Nothing" not in mail.headers
    assert mail.headers.get("MESSAGE-ID") == "<dup-27@customer.test>"
    assert (
        len(mail.headers.get_all("received"))
        == len(fixture("duplicate-a.eml").headers.get_all("Received")) + 1
    )


def test_address_named_like_its_own_address_has_no_display_name() -> None:
    assert [(a.email, a.name) for a in fixture("charset-ks-c-5601.eml").to] == [
        ("support@example.test", "")
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("<a@b.test>", "a@b.test"), ("  <a@b.test>  ", "a@b.test"), ("a@b.test", "a@b.test"),
     ("<a\r\n @b.test>", "a@b.test"), ("<>", None), ("", None), ("<x>" + "y" * 1000, "x")],
)  # fmt: skip
def test_message_ids_are_normalized(value: str, expected: str | None) -> None:
    assert normalize_message_id(value) == expected


def test_missing_message_id_is_none_and_a_defect() -> None:
    mail = fixture("missing-message-id.eml")
    assert mail.message_id is None
    assert "missing Message-ID" in mail.defects


# Charsets


def test_iso_2022_jp_mail_decodes() -> None:
    mail = fixture("charset-iso-2022-jp.eml")
    assert mail.subject == "プリンターの故障について"
    assert mail.sender is not None and mail.sender.name == "田中 太郎"
    assert mail.text == (
        "サポートご担当者様\n\nお問い合わせありがとうございます。プリンターが動きません。\n"
        "三階のプリンターで紙詰まりが起きています。\n\n田中\n"
    )


def test_gb2312_mail_holding_gbk_characters_decodes() -> None:
    mail = fixture("charset-gb2312-holding-gbk.eml")
    assert mail.subject == "打印机故障"
    assert mail.text == "您好，\n\n朱镕基的打印机坏了，请尽快派人来修理。\n\n谢谢！\n王堃\n"
    assert "charset gb2312 decoded as gbk" in mail.defects


def test_ks_c_5601_mail_decodes_as_cp949() -> None:
    mail = fixture("charset-ks-c-5601.eml")
    assert mail.subject == "프린터 고장 문의"
    assert mail.sender is not None and mail.sender.name == "김민수"
    assert mail.text == (
        "안녕하세요,\n\n3층 프린터가 고장났습니다. 확인 부탁드립니다.\n\n감사합니다.\n김민수 드림\n"
    )


def test_undeclared_8bit_body_decodes_utf8_and_latin1_lines_alike() -> None:
    mail = fixture("charset-undeclared-8bit.eml")
    assert "Café crème\n\nGrüße aus Köln\nPaul" in mail.text
    assert "\ufffd" not in mail.text


def test_windows_1252_outlook_mail_decodes_smart_punctuation() -> None:
    mail = fixture("outlook-cp1252.eml")
    assert mail.subject == "Invoice amount – € 1.250,00"
    assert mail.sender is not None and mail.sender.name == "Maria López"
    assert (
        "the invoice says “€ 1.250,00” but we agreed on €1,150 – could you check?\n"
        "It’s a bit urgent…"
    ) in mail.text


def test_iso_8859_1_label_on_windows_1252_bytes_reads_as_windows_1252() -> None:
    assert decode_bytes(b"\x93quoted\x94 \x80", "iso-8859-1") == ("“quoted” €", None)


def test_iso_2022_jp_with_nec_special_characters_falls_back_to_cp932() -> None:
    text, note = decode_bytes(b'\x1b$B-!-"\x1b(B No.', "iso-2022-jp")
    assert text == "①② No."
    assert note == "charset iso-2022-jp decoded as cp932"


def test_punycode_charset_label_is_refused_before_parsing() -> None:
    # The punycode codec decodes in quadratic time: a big body labelled so would stall.
    raw = build_mail("a" * 50_000 + "-" + "a" * 50_000 + "\n").replace(
        b'charset="utf-8"', b"charset=punycode"
    )
    mail = parse_email(raw)
    assert "punycode/idna charset label refused" in mail.defects
    assert mail.text.startswith("aaaa")


def test_unknown_charset_is_decoded_and_noted() -> None:
    mail = parse_email(build_mail().replace(b'charset="utf-8"', b"charset=x-klingon"))
    assert "please help" in mail.text
    assert any("unknown charset x-klingon" in defect for defect in mail.defects)


def test_broken_encoded_words_keep_readable_text() -> None:
    mail = fixture("broken-encoded-words.eml")
    assert mail.subject.startswith("Café bill")
    assert mail.sender is not None and mail.sender.email == "juergen@example.com"
    assert mail.sender.name == "Jürgen Müller"
    assert mail.malformed


# Bodies, HTML and attachments


def test_html_only_mail_gets_text_derived_from_html() -> None:
    mail = fixture("html-only.eml")
    assert mail.html is not None and "<script>" in mail.html  # as sent; the portal sanitizes
    assert "VPN client drops the connection every 10 minutes" in mail.text
    assert "* Reinstalling the client\n" in mail.text
    assert "Rebooting the laptop & the router" in mail.text
    assert "alert(1)" not in mail.text and "font-family" not in mail.text


def test_calendar_invite_body_is_the_plain_part_and_the_ics_an_attachment() -> None:
    mail = fixture("calendar-invite.eml")
    assert mail.text.startswith("You have been invited to: Printer maintenance window")
    assert "BEGIN:VCALENDAR" not in mail.text
    assert [a.filename for a in mail.attachments] == ["attachment-1.ics", "invite.ics"]


def test_inline_cid_image_is_an_inline_attachment_with_its_content_id() -> None:
    (image,) = fixture("inline-image.eml").attachments
    assert (image.filename, image.content_type, image.size) == ("logo.png", "image/png", 85)
    assert image.content_id == "logo123@customer.test"
    assert image.inline
    assert image.data.startswith(b"\x89PNG") and len(image.sha256) == 64


def test_rfc2231_and_rfc2047_attachment_names_are_decoded() -> None:
    attachments = fixture("attachments-encoded-names.eml").attachments
    assert [a.filename for a in attachments] == ["Résumé 2026.pdf", "Überweisung.txt", "notes.txt"]
    assert attachments[0].data.startswith(b"%PDF-1.4")
    assert attachments[1].data.decode().startswith("Überweisung vom 02.11.2026")
    assert not any(a.inline for a in attachments)


def test_attachment_names_lose_paths_and_control_characters() -> None:
    message = EmailMessage()
    message["From"] = "a@customer.test"
    message.set_content("see attached")
    message.add_attachment(
        b"1", maintype="application", subtype="pdf", filename="..\\..\\etc/pass\x07wd\u202e.pdf"
    )
    message.add_attachment(b"\x89PNG", maintype="image", subtype="png")
    names = [a.filename for a in parse_email(message.as_bytes()).attachments]
    assert names == ["passwd.pdf", "attachment-2.png"]


def test_blank_plain_part_falls_back_to_the_html() -> None:
    message = EmailMessage()
    message["From"] = "a@customer.test"
    message["Message-ID"] = "<blank-plain@customer.test>"
    message.set_content("\n")
    message.add_alternative("<p>The real text</p>", subtype="html")
    assert parse_email(message.as_bytes()).text == "The real text"


def test_empty_address_group_is_no_address_and_no_defect() -> None:
    mail = parse_email(build_mail(To="undisclosed-recipients:;"))
    assert (mail.to, mail.defects) == ((), ())


def test_empty_body_gives_empty_text_and_no_defect() -> None:
    mail = fixture("empty-body.eml")
    assert (mail.text, mail.reply_text, mail.quoted_text, mail.html) == ("", "", "", None)
    assert not mail.malformed


# Quoted history


def test_gmail_reply_keeps_the_new_sentence_and_drops_the_quote() -> None:
    mail = fixture("reply-gmail.eml")
    assert mail.reply_text.strip().startswith("Thanks, I tried turning it off and on again.")
    assert mail.reply_text.strip().endswith("Alice")
    assert mail.quoted_text.startswith(
        "On Tue, 3 Nov 2026 at 10:12, Support <support@example.test> wrote:"
    )
    assert "switch the printer off" not in mail.reply_text


def test_outlook_reply_splits_at_the_separator_and_header_block() -> None:
    mail = fixture("reply-outlook.eml")
    assert mail.reply_text.startswith(
        "The technician came by, but the tray 2 sensor is still flagged."
    )
    assert mail.quoted_text.startswith("________________________________\nFrom: Support")
    assert "fuser door sensor" not in mail.reply_text


def test_apple_mail_reply_splits_at_the_quoted_attribution() -> None:
    mail = fixture("reply-apple-mail.eml")
    assert "Update: it's working now, you can close the ticket. Thanks!" in mail.reply_text
    assert mail.quoted_text.startswith("> On 3 Nov 2026, at 11:00, Support")
    assert "pickup roller" not in mail.reply_text


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_reply_split_loses_no_text(name: str) -> None:
    mail = fixture(name)
    assert recombines(mail.text, mail.reply_text, mail.quoted_text)


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, 2 Nov 2026 at 09:00, Support <support@example.test> wrote:",
        "On Mon, 2 Nov 2026 at 09:00, Support Team <\nsupport@example.test> wrote:",
        "Am Mo., 2. Nov. 2026 um 09:00 Uhr schrieb Support <support@example.test>:",
        "Le lun. 2 nov. 2026 à 09:00, Support <support@example.test> a écrit :",
        "El lun, 2 nov 2026 a las 9:00, Support (<support@example.test>) escribió:",
        "On 2 Nov 2026, at 09:00, Support <support@example.test> wrote:",
        "##- Please type your reply above this line -##",
        "-----Original Message-----\nFrom: Support\nSent: Monday, November 2, 2026 9:00\nTo: Alice",
        "Von: Support <support@example.test>\nGesendet: Montag, 2. November 2026 09:00\n"
        "An: Alice\nBetreff: Drucker",
    ],
)
def test_reply_split_recognizes_client_attributions(attribution: str) -> None:
    text = f"Yes, that fixed it.\n\n{attribution}\n\n> old question\n> more\n"
    assert split_reply(text) == ("Yes, that fixed it.\n\n", text[len("Yes, that fixed it.\n\n") :])


def test_reply_split_takes_a_trailing_run_of_quoted_lines() -> None:
    text = "> what about tray 2?\nIt is fine now.\n\n> old\n>\n> older\n"
    assert split_reply(text) == ("> what about tray 2?\nIt is fine now.\n\n", "> old\n>\n> older\n")


def test_reply_split_keeps_a_mailing_list_footer() -> None:
    text = f"Maintenance tonight.\n{'_' * 47}\nAnnounce mailing list\n"
    assert split_reply(text) == (text, "")


@pytest.mark.parametrize(
    ("html", "new"),
    [
        (
            '<div>New</div><div class="gmail_quote"><div class="gmail_attr">On x:</div></div>',
            "<div>New</div>",
        ),
        ('<div>New<br><blockquote type="cite">old</blockquote></div>', "<div>New<br>"),
        (
            '<p>New</p>\n<div id="appendonsend"></div><div id="divRplyFwdMsg">From: x</div>',
            "<p>New</p>\n",
        ),
        ("<p>New</p><p>##- Please type your reply above this line -##</p><p>old</p>", "<p>New</p>"),
        ('<p>New</p><hr><div id="divRplyFwdMsg">From: x</div>', "<p>New</p>"),
        ("<p>Only new</p>", "<p>Only new</p>"),
    ],
)
def test_html_reply_split_cuts_at_quote_containers(html: str, new: str) -> None:
    assert split_reply_html(html) == (new, html[len(new) :])


# Forwards


def test_inline_gmail_forward_gives_the_original_sender_and_text() -> None:
    mail = fixture("forward-inline-gmail.eml")
    assert mail.forwarded is not None
    assert (mail.forwarded.sender.email, mail.forwarded.sender.name) == (
        "carol@client.test",
        "Carol Client",
    )
    assert mail.forwarded.subject == "Invoice question"
    assert mail.forwarded.date == "Mon, 2 Nov 2026 at 16:45"
    assert mail.forwarded.text.startswith("Hi Tom,\n\nInvoice INV-2026-0412 lists 12 licences")
    assert "Invoice INV-2026-0412" in mail.reply_text  # a forward is content, not history


def test_attached_rfc822_forward_gives_the_inner_sender_and_text() -> None:
    mail = fixture("forward-attached-rfc822.eml")
    assert mail.forwarded is not None
    assert mail.forwarded.sender.email == "dan@client.test"
    assert mail.forwarded.subject == "Cannot log in"
    assert mail.forwarded.text.startswith("Hi Tom,\n\nSince this afternoon I cannot log in")
    assert "Since this afternoon" not in mail.text
    (attached,) = mail.attachments
    assert (attached.filename, attached.content_type) == ("Cannot log in.eml", "message/rfc822")
    assert b"\nSubject: Cannot log in\n" in attached.data


def test_apple_mail_forward_is_found() -> None:
    text = (
        "FYI\n\nBegin forwarded message:\n\nFrom: Dan Customer <dan@client.test>\n"
        "Subject: Cannot log in\nDate: 3 November 2026 at 18:20:01 CET\n"
        "To: Tom <tom@example.test>\n\nHi Tom,\nit fails.\n"
    )
    original = find_inline_forward(text)
    assert original is not None
    assert (original.sender.email, original.subject, original.text) == (
        "dan@client.test",
        "Cannot log in",
        "Hi Tom,\nit fails.",
    )


def test_outlook_original_message_block_is_a_forward_only_under_a_fw_subject() -> None:
    raw = build_mail(
        "Please take this one.\n\n-----Original Message-----\n"
        "From: Dan Customer [mailto:dan@client.test]\nSent: Tuesday, November 3, 2026 6:20 PM\n"
        "To: Tom\nSubject: Cannot log in\n\nHi Tom,\nit fails.\n",
        Subject="FW: Cannot log in",
    )
    forward = parse_email(raw)
    assert forward.forwarded is not None and forward.forwarded.sender.email == "dan@client.test"
    assert forward.quoted_text == "" and "it fails." in forward.reply_text
    reply = parse_email(raw.replace(b"Subject: FW: Cannot", b"Subject: RE: Cannot"))
    assert reply.forwarded is None and reply.quoted_text.startswith("-----Original Message-----")


# Bounces


def test_dsn_bounce_gives_original_message_id_and_status() -> None:
    report = fixture("bounce-dsn.eml").delivery_report
    assert report is not None
    assert report.original_message_id == "outbound-1@example.test"
    assert (report.status, report.action, report.permanent) == ("5.1.1", "failed", True)
    assert report.recipients == ("a.doe@customer.test",)


def test_outlook_undeliverable_without_dsn_is_read_from_the_body() -> None:
    report = fixture("bounce-undeliverable-outlook.eml").delivery_report
    assert report is not None
    assert report.original_message_id == "outbound-4@example.test"
    assert (report.status, report.permanent, report.recipients) == (
        "5.1.10",
        True,
        ("kim.lee@client.test",),
    )


def test_customer_mail_quoting_a_message_id_has_no_delivery_report() -> None:
    mail = parse_email(
        build_mail("Your mail said:\nMessage-ID: <outbound-9@example.test>\nStatus 5.1.1\n")
    )
    assert mail.delivery_report is None


# Malformed mail


def test_malformed_headers_produce_defects_not_an_exception() -> None:
    mail = fixture("malformed-headers.eml")
    assert mail.subject == "Help, my mail program is very old"
    assert mail.message_id == "malformed-29@customer.test"
    assert mail.date is None
    assert mail.sender is not None and mail.sender.email == ""
    assert "the scanner on floor 1 sends empty PDFs" in mail.text
    assert {"invalid Date header", "unparseable From address", "malformed header line"} <= set(
        mail.defects
    )


def test_unterminated_multipart_keeps_the_text_and_the_partial_attachment() -> None:
    mail = fixture("unterminated-mime.eml")
    assert "the nightly sync failed again, log attached." in mail.text
    assert mail.attachments[0].filename == "sync.log"
    assert mail.attachments[0].data.startswith(b"2026-11-05 14:00:00 INFO sync worker")
    assert {"unterminated multipart", "invalid base64 in sync.log"} <= set(mail.defects)


def test_multipart_with_an_empty_boundary_reports_its_structure_defects() -> None:
    # mail-parser's own body pass raises on this tree; its structure defects still count.
    mail = parse_email(
        b"From: Alice Doe <alice@customer.test>\nSubject: Sync\n"
        b"Message-ID: <sync-1@customer.test>\n"
        b'Content-Type: multipart/mixed; boundary=""\n\n'
        b'--\nContent-Type: multipart/mixed; boundary=""\n\nThe nightly sync failed again.\n'
    )
    assert "The nightly sync failed again." in mail.text
    assert mail.sender is not None and mail.sender.email == "alice@customer.test"
    assert mail.defects == ("unterminated multipart", "multipart boundary never found")


def test_huge_header_line_is_parsed_and_noted() -> None:
    mail = fixture("huge-header-line.eml")
    assert mail.subject == "Badge reader at the main entrance"
    assert "badge reader at the main entrance" in mail.text
    assert "header line over 998 characters" in mail.defects


def test_deeply_nested_multipart_still_yields_the_headers() -> None:
    depth = 3000
    nesting = b"".join(
        b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (i, i + 1) for i in range(depth)
    )
    raw = (
        b"From: a@customer.test\nSubject: deep\nMessage-ID: <deep@x>\n"
        b"Content-Type: multipart/mixed; boundary=b0\n\n"
    )
    mail = parse_email(raw + nesting)
    assert (mail.subject, mail.message_id) == ("deep", "deep@x")
    assert mail.malformed


@pytest.mark.parametrize(
    "name", ["new-request.eml", "reply-gmail.eml", "reply-outlook.eml", "inline-image.eml"]
)
def test_well_formed_mail_has_no_defects(name: str) -> None:
    assert fixture(name).defects == ()


# Never raises

_MIME_PIECES = st.sampled_from(
    [
        b"From: ", b"To: a@b, ", b"Subject: ", b"Date: Mon, 2 Nov 2026 09:00:00 +0000",
        b"Message-ID: <", b"In-Reply-To: <x@y>", b"Return-Path: <>", b">", b"\n", b"\r\n", b"\n\n",
        b" ", b"\t", b":", b";", b"Content-Type: multipart/mixed; boundary=b",
        b"Content-Type: multipart/alternative; boundary=c",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b",
        b"Content-Type: message/rfc822", b"Content-Type: message/delivery-status",
        b"Content-Type: text/rfc822-headers", b"Content-Type: text/html; charset=",
        b"Content-Type: text/plain; charset=", b"utf-8", b"iso-2022-jp", b"gb2312",
        b"ks_c_5601-1987", b"utf-16", b"x-unknown", b"unicode_escape", b"idna", b"base64",
        b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: quoted-printable",
        b"Content-Transfer-Encoding: x-uuencode",
        b"Content-Disposition: attachment; filename*=utf-8''%E2%82",
        b"Content-Disposition: inline; filename=\"=?utf-8?b?w5w=?=\"", b"Content-ID: <x>", b"cid:x",
        b"=?utf-8?b?", b"=?gb2312?q?", b"=?iso-2022-jp?B?GyRC", b"?=", b"--b", b"--b--", b"--c",
        b"--c--", b"Final-Recipient: rfc822; a@b", b"Action: failed", b"Status: 5.1.1",
        b"Subject: Undeliverable: x", b"From: MAILER-DAEMON@x",
        b"On Mon, 2 Nov 2026 at 09:00, X <x@y> wrote:", b"> ", b"_" * 32,
        b"---------- Forwarded message ---------", b"Begin forwarded message:",
        b"##- Please type your reply above this line -##", b"<blockquote type=cite>",
        b"<div class=gmail_quote>", b"<![foo[", b"<script>", b"&#xd800;", b"\x1b$B", b"\x1b(I",
        b"\xe9", b"\xc3", b"\x00", b"\xff\xfe",
    ]
)  # fmt: skip


def assert_sane(mail: ParsedEmail) -> None:
    assert isinstance(mail, ParsedEmail)
    assert recombines(mail.text, mail.reply_text, mail.quoted_text)
    assert "\x00" not in mail.text and "\n" not in mail.subject
    mail.text.encode("utf-8")
    mail.subject.encode("utf-8")


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    assert_sane(parse_email(raw))


@settings(max_examples=500, deadline=None, database=None)
@given(st.lists(st.one_of(_MIME_PIECES, st.binary(max_size=12)), max_size=80).map(b"".join))
def test_random_mime_like_structures_never_raise(raw: bytes) -> None:
    assert_sane(parse_email(raw))


def test_nul_in_an_html_body_is_replaced_so_the_text_can_be_stored() -> None:
    parsed = parse_email(b"Content-Type: text/html\r\n\r\n<p>a\x00b</p>")
    assert parsed.html is not None and "\x00" not in parsed.html and "\x00" not in parsed.text


def test_attachment_with_a_junk_content_type_is_stored_as_octet_stream() -> None:
    raw = b"Content-ID: <img1@x>\nContent-Type:\x00 text/plain\n\n" + b"x" * 100
    [attachment] = parse_email(raw).attachments
    assert attachment.content_type == "application/octet-stream"


def test_an_unusable_from_falls_back_to_sender_then_reply_to_and_says_the_sender_is_unclear() -> None:
    head = b"To: support@example.test\r\nSubject: hi\r\nMessage-ID: <s-1@customer.test>\r\n"
    via_sender = parse_email(
        b"From: test test@example.com\r\nSender: Ops <ops@customer.test>\r\n"
        b"Reply-To: other@customer.test\r\n" + head + b"\r\nbody\r\n"
    )
    assert via_sender.sender is not None and via_sender.sender.email == "ops@customer.test"
    assert any(defect.startswith("sender unclear") for defect in via_sender.defects)
    nothing = parse_email(b"From: Father Time <father.time@xcar.wooster.local>\r\n" + head + b"\r\nbody\r\n")
    assert nothing.sender is not None and (nothing.sender.email, nothing.sender.name) == ("", "Father Time")
    assert "sender unclear: no valid From, Sender or Reply-To address" in nothing.defects


def test_a_stray_line_in_the_header_section_is_skipped_and_the_headers_below_it_are_read() -> None:
    mail = parse_email(
        b"Received: by mx.example.test\r\nquite Delivered-To: support@example.test\r\n"
        b"From: Alice <alice@customer.test>\r\nSubject: Printer\r\nMessage-ID: <h-1@customer.test>\r\n"
        b"\r\nIt jams.\r\n"
    )
    assert (mail.subject, mail.message_id, mail.text) == ("Printer", "h-1@customer.test", "It jams.\n")
    assert mail.sender is not None and mail.sender.email == "alice@customer.test"
    assert "malformed header line skipped: 'quite Delivered-To: support@example.test'" in mail.defects


def test_a_message_without_the_blank_separator_keeps_its_body() -> None:
    mail = parse_email(b"From: alice@customer.test\r\nSubject: Printer\r\nIt jams.\r\nAgain.\r\n")
    assert mail.subject == "Printer" and "It jams." in mail.text


def test_a_named_inline_text_part_is_the_body_when_there_is_no_other() -> None:
    mail = parse_email(
        b"From: alice@customer.test\r\nSubject: notes\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; name="msg.txt"\r\nContent-Disposition: inline; filename="msg.txt"\r\n'
        b"\r\nThe printer jams again.\r\n"
    )
    assert mail.reply_text.strip() == "The printer jams again."
    assert [attachment.filename for attachment in mail.attachments] == ["msg.txt"]


def test_attachment_names_come_from_raw_utf8_parameters_and_content_location() -> None:
    mail = parse_email(
        b"From: alice@customer.test\r\nSubject: files\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee files\r\n'
        b"--b\r\nContent-Type: text/plain; name=ci\xc3\xable.txt\r\nContent-Disposition: attachment;\r\n"
        b"\tfilename=ci\xc3\xable.txt\r\n\r\nx\r\n"
        b"--b\r\nContent-Type: image/jpeg\r\nContent-Location: Photo25.jpg\r\n\r\nx\r\n--b--\r\n"
    )
    assert [attachment.filename for attachment in mail.attachments] == ["ci\u00eble.txt", "Photo25.jpg"]


def test_utf8_text_labelled_gb2312_is_read_as_utf8_and_the_mislabel_recorded() -> None:
    body = "你好，发票已经收到。".encode()
    mail = parse_email(
        b"From: a@customer.test\r\nSubject: x\r\nContent-Type: text/plain; charset=GB2312\r\n\r\n" + body
    )
    assert mail.text == "你好，发票已经收到。"
    assert "charset gb2312 mislabelled, decoded as utf-8" in mail.defects


def test_a_raw_shift_jis_subject_is_read_in_the_charset_the_body_declares() -> None:
    mail = parse_email(
        b"From: a@customer.test\r\nSubject: " + "ツールの件".encode("shift_jis") + b"\r\n"
        b"Content-Type: text/plain; charset=Shift_JIS\r\n\r\n" + "よろしく".encode("shift_jis")
    )
    assert mail.subject == "ツールの件"
    assert any("detected as cp932" in defect for defect in mail.defects)


def _with_winmail_dat(tnef: bytes, body: str = "") -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "alice@customer.test"
    message["Subject"] = "from Outlook"
    message.set_content(body)
    message.add_attachment(tnef, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    return message.as_bytes()


def test_a_winmail_dat_is_unpacked_into_its_files_and_kept() -> None:
    tnef = (FIXTURES.parent / "corpus" / "tnefparse" / "two-files.tnef").read_bytes()
    mail = parse_email(_with_winmail_dat(tnef, "see attached"))
    assert [attachment.filename for attachment in mail.attachments] == ["winmail.dat", "AUTHORS", "README"]
    assert mail.attachments[0].data == tnef


def test_the_text_inside_a_winmail_dat_is_the_body_when_the_mail_has_none() -> None:
    tnef = (FIXTURES.parent / "corpus" / "tnefparse" / "body.tnef").read_bytes()
    mail = parse_email(_with_winmail_dat(tnef))
    assert mail.reply_text.strip() and "<" not in mail.reply_text[:50]


def test_an_encoded_display_name_holding_a_comma_is_one_name() -> None:
    mail = parse_email(b"From: =?iso-8859-1?Q?M=FCller,=20Andreas?= <andreas@customer.test>\r\nSubject: x\r\n\r\nhi\r\n")
    assert mail.sender is not None and (mail.sender.email, mail.sender.name) == ("andreas@customer.test", "Müller, Andreas")
