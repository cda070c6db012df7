"""A customer's display name never forges the sender (or recipient) of mail Wicket sends.

Agent notifications go out as `From: <customer name> via <brand> <mailbox address>`, signed
with the mailbox domain's DKIM key, and acknowledgements are addressed `To: <customer
name> <customer address>`. Whatever name a stranger puts in their From header, each
address header of what Wicket sends must read, with Python's email package and with the
legacy parser (`email.utils.getaddresses`, an independent implementation that Wicket's own
inbound parser and many mail tools use), as exactly one mailbox: the one Wicket meant.

The mail goes the whole way: received and processed as production does, queued, rendered
and delivered by the outbox, and the delivered bytes are what is parsed.
"""

from __future__ import annotations

import base64
import itertools
from email import message_from_bytes
from email.headerregistry import Address
from email.policy import SMTP, compat32, default
from email.utils import getaddresses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.cli.runtime import Gateway
from gateway.mail.parse import parse_email
from gateway.models import Contact, Mailbox, utcnow
from gateway.outbound.signin_mail import compose_signin_email
from gateway.settings import Settings
from portal.account_mail import compose_password_notice
from portal.submissions import portal_email
from tests.mailflow import TOM, add_tom, settle
from tests.support import SUPPORT, ReceiveEmail

FORGED_NAME = "Very Important Customer Name With A Long Title ceo@acme.test"
FORGER = "mallory@evil.test"
_senders = itertools.count()


def read_by_both_parsers(raw: bytes, header: str) -> tuple[list[str], list[str]]:
    """The addresses in `header` as the modern and the legacy email parser read them."""
    modern = message_from_bytes(raw, policy=default)[header]
    modern_addresses = [address.addr_spec for address in modern.addresses] if modern is not None else []
    legacy = [address for _, address in getaddresses(message_from_bytes(raw, policy=compat32).get_all(header, []))]
    return modern_addresses, legacy


def assert_reads_as(raw: bytes, header: str, address: str) -> None:
    modern, legacy = read_by_both_parsers(raw, header)
    assert modern == [address], (header, modern, raw.split(b"\r\n\r\n")[0])
    assert [found.lower() for found in legacy] == [address.lower()], (header, legacy, raw.split(b"\r\n\r\n")[0])


def encoded_from(name: str, address: str) -> str:
    """A From header that carries `name` exactly: RFC 2047 words of whole characters."""
    words, chunk = [], ""
    for character in name:
        if len((chunk + character).encode()) > 36:
            words.append(chunk)
            chunk = ""
        chunk += character
    words.append(chunk)
    encoded = " ".join(f"=?utf-8?b?{base64.b64encode(word.encode()).decode()}?=" for word in words if word)
    return f"{encoded} <{address}>" if encoded else address


async def mail_in(receive_email: ReceiveEmail, from_header: str, sender: str) -> None:
    """A new request whose From header is written as given (no email package in between)."""
    raw = (
        f"From: {from_header}\r\nTo: {SUPPORT}\r\nSubject: Invoice question\r\n"
        f"Message-ID: <{next(_senders)}.invoice@customer.test>\r\n\r\nPlease call me.\r\n"
    )
    await receive_email(raw.encode(), mail_from=sender)


async def test_a_display_name_holding_an_address_does_not_become_the_notification_sender(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await add_tom(gateway)
    await mail_in(receive_email, f'"{FORGED_NAME}" <{FORGER}>', FORGER)
    sender = await settle(gateway)
    [notification] = sender.to(TOM)
    assert_reads_as(notification.raw, "From", SUPPORT)
    assert_reads_as(notification.raw, "To", TOM)
    [acknowledgement] = sender.to(FORGER)
    assert_reads_as(acknowledgement.raw, "From", SUPPORT)
    assert_reads_as(acknowledgement.raw, "To", FORGER)
    for mail in (notification, acknowledgement):
        assert len(mail.message["Reply-To"].addresses) == 1
        assert mail.message["Reply-To"].addresses[0].domain == "example.test"


# Names a stranger might choose: addresses, quotes, brackets, encoded words (the literal
# text of one, which a careless writer decodes), controls, any Unicode, very long.
_pieces = st.one_of(
    st.text(max_size=40),
    st.sampled_from([
        "ceo@acme.test", "<ceo@acme.test>", '"', "'", "\\", ",", ";", ":", "(", ")", "[", "]", "<", ">",
        "=?utf-8?q?ceo=40acme.test?=", "=?utf-8?b?Y2VvQGFjbWUudGVzdA==?=", "＠", "\u200b", "\r\n", "\t",
        "Very Important Customer Name With A Long Title", " via ", ".", "\x00", "\x7f",
    ]),
)
# Header folding is where names went wrong, so a plain lead of any length first moves the
# hostile part across the 78-column fold.
_leads = st.integers(0, 100).map(lambda length: ("Customer Name " * 8)[:length])
display_names = st.builds(str.__add__, _leads, st.lists(_pieces, max_size=12).map("".join))


@settings(
    deadline=None, max_examples=80, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(name=display_names)
async def test_any_customer_display_name_leaves_every_address_header_reading_as_meant(
    gateway: Gateway, receive_email: ReceiveEmail, name: str
) -> None:
    await add_tom(gateway)
    customer = f"customer{next(_senders)}@customer.test"
    sender = await settle(gateway)
    sender.sent.clear()
    await mail_in(receive_email, encoded_from(name, customer), customer)
    sender = await settle(gateway)
    notifications, acknowledgements = sender.to(TOM), sender.to(customer)
    assert notifications and acknowledgements, [mail.rcpt_tos for mail in sender.sent]
    for mail in notifications:
        assert_reads_as(mail.raw, "From", SUPPORT)
        assert_reads_as(mail.raw, "To", TOM)
    for mail in acknowledgements:
        assert_reads_as(mail.raw, "From", SUPPORT)
        assert_reads_as(mail.raw, "To", customer)
    for mail in sender.sent:
        modern, legacy = read_by_both_parsers(mail.raw, "Reply-To")
        assert len(modern) == len(legacy) == 1 and modern[0].lower() == legacy[0].lower()
        assert Address(addr_spec=modern[0]).domain == "example.test"


def test_a_portal_message_from_a_contact_with_such_a_name_is_read_as_that_contacts() -> None:
    """What a contact writes in the portal becomes an email that Wicket itself parses again."""
    contact = Contact(email=FORGER, name=FORGED_NAME + " via Example Support")
    mailbox = Mailbox(address=SUPPORT, name="Example Support")
    raw = portal_email(contact=contact, mailbox=mailbox, subject="Hello", text="Hi.").as_bytes()
    parsed = parse_email(raw)
    assert parsed.sender is not None and parsed.sender.email == FORGER
    assert_reads_as(raw, "From", FORGER)
    assert_reads_as(raw, "To", SUPPORT)


@settings(deadline=None, max_examples=150, database=None, print_blob=True)
@given(name=display_names)
def test_sign_in_mail_and_password_notices_address_only_the_contact(name: str) -> None:
    """Every other mail Wicket composes for a contact goes through the same address rule."""
    wicket = Settings(secret_keys=["test-secret-key-newest"], public_url="http://portal.example.test")
    contact = Contact(email=FORGER, name=name)
    mailbox = Mailbox(address=SUPPORT, name="Example Support")
    signin = compose_signin_email(
        wicket, mailbox, to_email=FORGER, to_name=name, url="http://portal.example.test/l/x",
        code="ABCDEFGH", minutes=15,
    )
    notice = compose_password_notice(wicket, mailbox, contact, what="set", when=utcnow(), ip="127.0.0.1")
    for mail in (signin, notice):
        raw = mail.as_bytes(policy=SMTP)
        assert_reads_as(raw, "From", SUPPORT)
        assert_reads_as(raw, "To", FORGER)
