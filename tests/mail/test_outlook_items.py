"""Outlook items (.msg files): an attached one is opened like winmail.dat, a saved one is
read as the message it holds. The items are Apache POI's test files (fixtures/corpus/poi/)."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.mail import outlook
from gateway.mail.ole import directory_size
from gateway.mail.outlook import Allowance, UnreadableItem, read_item
from gateway.mail.outlook_mail import CONVERTED_HEADER, as_message
from gateway.mail.parse import containers, parse_email

POI = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "poi"


def _item(name: str) -> bytes:
    return (POI / name).read_bytes()


def _with_item(
    item: bytes, body: str = "", *, filename: str = "forwarded.msg", content_type: str = "application/vnd.ms-outlook"
) -> bytes:
    message = EmailMessage()
    message["From"] = "alice@customer.test"
    message["To"] = "support@example.test"
    message["Subject"] = "the mail I got"
    message["Message-ID"] = "<item-1@customer.test>"
    message.set_content(body)
    maintype, subtype = content_type.split("/")
    message.add_attachment(item, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def test_an_attached_outlook_item_is_unpacked_into_its_files_and_kept() -> None:
    item = _item("attachment_test_msg.msg")
    mail = parse_email(_with_item(item, "see the mail below"))
    assert [attachment.filename for attachment in mail.attachments] == ["forwarded.msg", "test-unicode.doc", "pj1.txt"]
    original, document, text = mail.attachments
    assert original.data == item and original.content_type == "application/vnd.ms-outlook"
    assert (document.content_type, document.size) == ("application/msword", 24064)
    assert (text.content_type, text.size) == ("text/plain", 89)
    assert mail.reply_text.strip() == "see the mail below"  # the mail's own text wins
    assert mail.defects == ()


def test_the_text_of_an_attached_item_is_the_body_when_the_mail_has_none() -> None:
    mail = parse_email(_with_item(_item("simple_test_msg.msg")))
    assert mail.reply_text.strip() == "This is a test message."


def test_an_attached_item_with_only_html_gives_its_text_without_markup() -> None:
    mail = parse_email(_with_item(_item("HTMLBodyBinary_CP1251.msg")))
    assert mail.reply_text.strip() == "HTML автоматически"  # its windows-1251 HTML, decoded


def test_a_msg_file_name_on_an_ole_file_is_opened_whatever_type_was_declared() -> None:
    mail = parse_email(_with_item(_item("attachment_test_msg.msg"), "hi", filename="Mail.MSG",
                                  content_type="application/octet-stream"))
    assert [attachment.filename for attachment in mail.attachments] == ["Mail.MSG", "test-unicode.doc", "pj1.txt"]


def test_an_item_inside_an_item_comes_out_as_a_msg_file_of_its_own() -> None:
    mail = parse_email(_with_item(_item("attachment_msg_pdf.msg"), "hi"))
    names = [(attachment.filename, attachment.content_type) for attachment in mail.attachments]
    assert names == [("forwarded.msg", "application/vnd.ms-outlook"),
                     ("Test Attachment.msg", "application/vnd.ms-outlook"),
                     ("smbprn.00009008.KdcPjl.pdf", "application/pdf")]
    inner = mail.attachments[1].data
    assert read_item(inner, Allowance(10, 10**6)).text.strip() == "Blah blah blah"  # a whole item, readable alone
    assert mail.defects == ()


def test_items_nested_deeper_than_the_limit_are_left_closed_and_a_defect_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "_MAX_DEPTH", 1)
    mail = parse_email(_with_item(_item("attachment_msg_pdf.msg"), "hi"))
    assert "Test Attachment.msg" in [attachment.filename for attachment in mail.attachments]
    assert any("Test Attachment.msg left closed" in defect for defect in mail.defects)


def test_a_damaged_outlook_item_stays_a_plain_attachment_and_a_defect_says_so() -> None:
    damaged = _item("attachment_test_msg.msg")[:6000]  # cut short: the OLE sectors it names are gone
    mail = parse_email(_with_item(damaged, "see the mail below"))
    (kept,) = mail.attachments
    assert (kept.filename, kept.data, kept.content_type) == ("forwarded.msg", damaged, "application/vnd.ms-outlook")
    assert any(defect.startswith("Outlook item forwarded.msg could not be read") for defect in mail.defects)
    assert mail.reply_text.strip() == "see the mail below"


def test_a_msg_named_file_that_is_no_ole_file_is_an_ordinary_attachment() -> None:
    mail = parse_email(_with_item(b"minutes of the meeting\n", "hi", filename="notes.msg", content_type="text/plain"))
    assert [attachment.filename for attachment in mail.attachments] == ["notes.msg"]
    assert mail.defects == ()


def test_an_item_gives_out_no_more_files_than_its_allowance() -> None:
    item = _item("attachment_test_msg.msg")
    by_count = read_item(item, Allowance(1, 10**6))
    assert [file.filename for file in by_count.files] == ["test-unicode.doc"]
    by_size = read_item(item, Allowance(500, 100))
    assert [file.filename for file in by_size.files] == ["pj1.txt"]  # the 24 KB document did not fit
    for read in (by_count, by_size):
        assert read.notes == ("1 files of an Outlook item left inside it (over the unpacking limits)",)


def test_a_saved_item_becomes_the_message_it_holds() -> None:
    item = _item("example_received_unicode.msg")
    mail = parse_email(as_message(item))
    assert mail.subject == "This is a test message please ignore"
    assert mail.sender is not None and (mail.sender.email, mail.sender.name) == ("mike.farman@alfresco.com", "Mike Farman")
    assert [a.email for a in mail.to] == ["ashutosh.dandavate@alfresco.com", "paul.hh@alfresco.com", "mikef@alfresco.com"]
    assert "nick.burch@alfresco.com" in [a.email for a in mail.cc]
    assert mail.date is not None and mail.date.isoformat() == "2010-01-11T16:25:07+00:00"
    assert mail.message_id == "27350255.35521263227107828.JavaMail.root@zimbra.alfresco.com"
    assert "The quick brown fox jumps over the lazy dog" in mail.reply_text
    assert [a.filename for a in mail.attachments] == ["alfresco.gif"]
    assert mail.attachments[0].size == 16174
    assert mail.headers.get(CONVERTED_HEADER).endswith(f"sha256={hashlib.sha256(item).hexdigest()}")


def test_a_saved_item_always_becomes_the_same_bytes() -> None:
    item = _item("attachment_msg_inlineImg.msg")
    assert as_message(item) == as_message(item)  # so replaying it twice is a duplicate


def test_the_inline_pictures_of_a_saved_item_stay_beside_its_html() -> None:
    mail = parse_email(as_message(_item("attachment_msg_inlineImg.msg")))
    assert mail.html is not None and "cid:image001.png@01D0A524.96D40F30" in mail.html
    pictures = {a.filename: (a.inline, a.content_id) for a in mail.attachments}
    assert pictures["image001.png"] == (True, "image001.png@01D0A524.96D40F30")
    assert len(pictures) == 4


def test_a_saved_item_whose_sender_has_only_an_exchange_name_gets_no_made_up_from() -> None:
    mail = parse_email(as_message(_item("quick.msg")))
    assert mail.subject == "Test the content transformer" and mail.sender is None
    assert "/O=HOSTEDSERVICE2" not in str(as_message(_item("quick.msg")))


def test_bytes_that_are_no_outlook_item_are_left_as_they_are() -> None:
    raw = b"From: alice@customer.test\r\nSubject: hi\r\n\r\nhello\r\n"
    assert as_message(raw) is raw


def test_a_damaged_saved_item_is_refused_with_the_reason() -> None:
    with pytest.raises(UnreadableItem):
        as_message(_item("simple_test_msg.msg")[:3000])


def test_the_directory_size_read_from_the_header_is_the_one_olefile_finds() -> None:
    import io

    import olefile

    for path in sorted(POI.glob("*.msg")):
        data = path.read_bytes()
        size = directory_size(data)
        assert size is not None and size.entries == len(olefile.OleFileIO(io.BytesIO(data)).direntries), path.name
    assert directory_size(_item("attachment_test_msg.msg")).storages == 4  # a recipient, two attachments, named props
    assert directory_size(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)) is None  # no sector size: not followed


def test_an_item_of_too_many_recipients_and_attachments_is_left_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outlook, "MAX_STORAGES", 3)
    mail = parse_email(_with_item(_item("attachment_test_msg.msg"), "hi"))
    assert [attachment.filename for attachment in mail.attachments] == ["forwarded.msg"]
    assert any("not opened: 4 recipients and attachments, over 3" in defect for defect in mail.defects)


def test_the_items_of_one_message_share_one_cap_on_directory_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "MAX_ENTRIES", 100)  # the first item has 80 entries
    message = EmailMessage()
    message["From"] = "alice@customer.test"
    message["Message-ID"] = "<two-items@customer.test>"
    message.set_content("two mails")
    for name in ("first.msg", "second.msg"):
        message.add_attachment(_item("attachment_test_msg.msg"), maintype="application", subtype="vnd.ms-outlook",
                               filename=name)
    mail = parse_email(message.as_bytes())
    assert [a.filename for a in mail.attachments] == ["first.msg", "test-unicode.doc", "pj1.txt", "second.msg"]
    assert any("second.msg could not be read (not opened: 80 OLE directory entries, over the 20 left" in defect
               for defect in mail.defects)


def test_without_the_optional_extract_msg_an_attached_item_stays_whole_and_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # extract-msg is GPL-3.0 and Wicket Apache-2.0: it is an extra (`wicket[outlook]`), so an
    # installation without it must keep the item whole and say how to open it.
    monkeypatch.setitem(__import__("sys").modules, "extract_msg", None)  # `import extract_msg` fails
    item = _item("attachment_test_msg.msg")
    mail = parse_email(_with_item(item, "see the mail below"))
    (kept,) = mail.attachments
    assert (kept.filename, kept.data) == ("forwarded.msg", item)
    assert any("wicket[outlook]" in defect for defect in mail.defects), mail.defects
    with pytest.raises(UnreadableItem, match=r"wicket\[outlook\]"):
        as_message(item)
