"""Outbound emails start from `new_email()`: the standard policy, each header class made once."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP

from gateway.outbound.mime import OUTBOUND, new_email


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


def test_each_header_class_is_made_once_not_per_header() -> None:
    first, again = OUTBOUND.header_factory["Subject"], OUTBOUND.header_factory["subject"]
    assert first is again
    assert OUTBOUND.header_factory["To"] is not first
