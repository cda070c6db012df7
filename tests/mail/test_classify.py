"""Mail that must not be answered: loops, bounces, auto-replies and list mail."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from gateway.mail.classify import Classification, MailKind, classify
from gateway.mail.parse import ParsedEmail, parse_email
from tests.support import FIXTURES


def fixture(name: str) -> ParsedEmail:
    return parse_email((FIXTURES / name).read_bytes())


def build_mail(**headers: str) -> ParsedEmail:
    """A plain customer mail with extra headers (underscores in keywords become dashes)."""
    message = EmailMessage()
    message["From"] = "Alice Doe <alice@customer.test>"
    message["To"] = "support@example.test"
    message["Subject"] = "Printer on floor 3 is jammed"
    message["Message-ID"] = "<built-2@customer.test>"
    for name, value in headers.items():
        del message[name.replace("_", "-")]
        message[name.replace("_", "-")] = value
    message.set_content("Hello,\nplease help.\n")
    return parse_email(message.as_bytes())


@pytest.mark.parametrize(
    "name",
    ["new-request.eml", "reply-gmail.eml", "reply-outlook.eml", "forward-inline-gmail.eml",
     "forward-attached-rfc822.eml", "charset-iso-2022-jp.eml", "malformed-headers.eml"],
)  # fmt: skip
def test_ordinary_customer_mail_is_normal_and_answerable(name: str) -> None:
    verdict = classify(
        fixture(name), loop_token="example.test", envelope_sender="alice@customer.test"
    )
    assert verdict == Classification(MailKind.NORMAL, ())
    assert verdict.answerable


def test_only_normal_mail_is_answerable() -> None:
    assert [kind for kind in MailKind if Classification(kind, ()).answerable] == [MailKind.NORMAL]


def test_our_own_loop_header_makes_a_loop() -> None:
    verdict = classify(fixture("loop-own-header.eml"), loop_token="example.test")
    assert verdict.kind is MailKind.LOOP
    assert verdict.reasons == ("X-Wicket-Loop: example.test",)


def test_loop_header_of_any_value_counts_when_no_token_is_configured() -> None:
    assert classify(build_mail(X_Wicket_Loop="anything")).kind is MailKind.LOOP


def test_loop_header_with_a_foreign_token_is_not_a_loop() -> None:
    assert (
        classify(build_mail(X_Wicket_Loop="other.test"), loop_token="example.test").kind
        is MailKind.NORMAL
    )


def test_loop_header_name_is_configurable() -> None:
    mail = build_mail(X_Helpdesk_Loop="example.test")
    assert (
        classify(mail, loop_header="X-Helpdesk-Loop", loop_token="example.test").kind
        is MailKind.LOOP
    )


def test_loop_wins_over_auto_reply_and_lists_every_matching_header() -> None:
    verdict = classify(build_mail(X_Wicket_Loop="example.test", Auto_Submitted="auto-replied"))
    assert verdict.kind is MailKind.LOOP
    assert verdict.reasons == ("X-Wicket-Loop: example.test", "Auto-Submitted: auto-replied")


def test_spoofed_wicket_control_headers_do_not_change_the_kind() -> None:
    assert (
        classify(fixture("spoofed-control-headers.eml"), loop_token="example.test").kind
        is MailKind.NORMAL
    )


def test_dsn_is_a_bounce_even_with_auto_submitted_and_a_looped_original_inside() -> None:
    verdict = classify(fixture("bounce-dsn.eml"), loop_token="example.test", envelope_sender="")
    assert verdict.kind is MailKind.BOUNCE
    assert "Content-Type: multipart/report; report-type=delivery-status" in verdict.reasons
    assert "Auto-Submitted: auto-replied" in verdict.reasons
    assert "Return-Path: <>" in verdict.reasons and "envelope sender <>" in verdict.reasons
    assert not any(reason.startswith("X-Wicket-Loop") for reason in verdict.reasons)


def test_undeliverable_notice_from_postmaster_is_a_bounce() -> None:
    verdict = classify(fixture("bounce-undeliverable-outlook.eml"))
    assert verdict.kind is MailKind.BOUNCE
    assert "From: postmaster@outlook.test" in verdict.reasons
    assert "Subject: Undeliverable: Your ticket" in verdict.reasons


def test_bounce_subject_from_the_null_envelope_sender_is_a_bounce() -> None:
    mail = build_mail(
        From="Mail System <mail@relay.test>",
        Subject="Mail delivery failed: returning message to sender",
    )
    assert classify(mail, envelope_sender="<>").kind is MailKind.BOUNCE


def test_bounce_subject_from_a_person_is_normal() -> None:
    assert (
        classify(build_mail(Subject="Returned mail? My parcel came back")).kind is MailKind.NORMAL
    )


def test_mailer_daemon_without_a_bounce_subject_is_never_answered() -> None:
    verdict = classify(
        build_mail(From="MAILER-DAEMON@relay.test", Subject="Warning: message delayed")
    )
    assert verdict.kind is MailKind.AUTO_REPLY
    assert verdict.reasons == ("From: mailer-daemon@relay.test",)


def test_rfc3834_auto_submitted_is_an_auto_reply() -> None:
    verdict = classify(fixture("auto-reply-rfc3834.eml"))
    assert verdict.kind is MailKind.AUTO_REPLY
    assert verdict.reasons == (
        "Auto-Submitted: auto-replied (vacation)",
        "Subject: Out of office: Re: Your VPN access request",
    )


def test_auto_submitted_no_is_normal() -> None:
    assert classify(build_mail(Auto_Submitted="no")).kind is MailKind.NORMAL


def test_x_autoreply_is_an_auto_reply() -> None:
    verdict = classify(fixture("auto-reply-x-autoreply.eml"))
    assert (verdict.kind, verdict.reasons) == (MailKind.AUTO_REPLY, ("X-Autoreply: yes",))


def test_x_autorespond_is_an_auto_reply() -> None:
    assert classify(build_mail(X_Autorespond="vacation")).kind is MailKind.AUTO_REPLY


def test_outlook_suppress_header_with_automatic_reply_subject_is_an_auto_reply() -> None:
    verdict = classify(fixture("auto-reply-outlook-suppress.eml"))
    assert verdict.kind is MailKind.AUTO_REPLY
    assert verdict.reasons == (
        "X-Auto-Response-Suppress: All",
        "Subject: Automatic reply: Your VPN access request",
    )


def test_automatic_reply_subject_alone_is_normal() -> None:
    assert (
        classify(build_mail(Subject="Automatic reply: is there a way to switch it off?")).kind
        is MailKind.NORMAL
    )


def test_precedence_auto_reply_is_an_auto_reply() -> None:
    assert classify(build_mail(Precedence="auto_reply")).kind is MailKind.AUTO_REPLY


def test_empty_return_path_alone_is_never_answered() -> None:
    verdict = classify(build_mail(Return_Path="<>"))
    assert (verdict.kind, verdict.reasons) == (MailKind.AUTO_REPLY, ("Return-Path: <>",))


def test_empty_envelope_sender_alone_is_never_answered() -> None:
    verdict = classify(build_mail(), envelope_sender="")
    assert (verdict.kind, verdict.reasons) == (MailKind.AUTO_REPLY, ("envelope sender <>",))


def test_precedence_bulk_is_list_mail() -> None:
    verdict = classify(fixture("precedence-bulk.eml"))
    assert (verdict.kind, verdict.reasons) == (MailKind.LIST, ("Precedence: bulk",))


@pytest.mark.parametrize("precedence", ["junk", "list", "BULK"])
def test_other_bulk_precedences_are_list_mail(precedence: str) -> None:
    assert classify(build_mail(Precedence=precedence)).kind is MailKind.LIST


def test_mailing_list_headers_make_list_mail() -> None:
    verdict = classify(fixture("list-mail.eml"))
    assert verdict.kind is MailKind.LIST
    assert [reason.partition(":")[0] for reason in verdict.reasons] == [
        "List-Id",
        "List-Unsubscribe",
    ]
