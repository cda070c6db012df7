"""Sender verdicts (SPF, DKIM, DMARC, ARC) on inbound mail, and what a DMARC failure may not do.

DNS is the fixed resolver of the `gateway` fixture: each test publishes the records it
needs. Mail is signed here with an RSA key made for the test run (never committed).
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
import time
from functools import cache

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.inbound.dns import DnsTemporaryError, FixedResolver
from gateway.inbound.sender_checks import SenderChecks
from gateway.mail.verdicts import SenderVerdicts
from gateway.models import InboundEmail, InboundStatus, Message, Ticket
from gateway.storage.database import orm
from gateway.tickets.markers import format_marker
from tests.support import SUPPORT, ReceiveEmail, participant_emails

ALICE = "alice@customer.test"
SENDER_IP = "192.0.2.10"
PEER = f"{SENDER_IP}:41000"


@cache
def signing_key() -> tuple[bytes, str]:
    """A throwaway RSA key: (private PEM, the public key as a DKIM record's p= value)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(public).decode()


def mail(subject: str = "Help please", *, sender: str = f"Alice Doe <{ALICE}>", body: str = "My order is late.",
         extra: str = "", message_id: str = "<m1@customer.test>") -> bytes:
    return (
        f"From: {sender}\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n{extra}\r\n{body}\r\n"
    ).encode()


def signed(raw: bytes, domain: str = "customer.test", selector: str = "s1") -> bytes:
    pem, _ = signing_key()
    return dkim.sign(raw, selector.encode(), domain.encode(), pem, include_headers=[b"from", b"to", b"subject"]) + raw


def publish(resolver: FixedResolver, *, spf: str | None = None, dmarc: str | None = None,
            dkim_key: bool = False, domain: str = "customer.test") -> None:
    if spf:
        resolver.add(domain, "TXT", spf)
    if dmarc:
        resolver.add(f"_dmarc.{domain}", "TXT", dmarc)
    if dkim_key:
        resolver.add(f"s1._domainkey.{domain}", "TXT", f"v=DKIM1; k=rsa; p={signing_key()[1]}")


async def verdicts_of(gateway: Gateway, inbound: InboundEmail) -> SenderVerdicts:
    def _look(session: Session):
        stored = session.scalar(select(Message.sender_verdicts).where(Message.inbound_email_id == inbound.id))
        return stored

    stored = await gateway.db.read(orm(_look))
    verdicts = SenderVerdicts.from_json(stored)
    assert verdicts is not None
    return verdicts


async def test_signed_mail_over_smtp_passes_spf_dkim_and_dmarc(
    gateway: Gateway, smtp_server: tuple[str, int], resolver: FixedResolver
) -> None:
    publish(resolver, spf="v=spf1 ip4:127.0.0.1 -all", dmarc="v=DMARC1; p=reject", dkim_key=True)

    def send() -> None:
        with smtplib.SMTP(*smtp_server, timeout=10) as client:
            client.ehlo("mail.customer.test")
            client.sendmail(ALICE, [SUPPORT], signed(mail()))

    await asyncio.to_thread(send)
    await gateway.processor.drain()

    def _look(session: Session):
        inbound = (session.execute(select(InboundEmail))).scalar_one()
        return inbound

    inbound = await gateway.db.read(orm(_look))
    assert (inbound.helo, inbound.status) == ("mail.customer.test", InboundStatus.DELIVERED)
    verdicts = await verdicts_of(gateway, inbound)
    assert (verdicts.spf.result, verdicts.spf.domain) == ("pass", "customer.test")
    assert [(d.result, d.domain, d.selector) for d in verdicts.dkim] == [("pass", "customer.test", "s1")]
    assert (verdicts.dmarc.result, verdicts.dmarc.policy, verdicts.dmarc.aligned) == ("pass", "reject", ("spf", "dkim"))
    assert verdicts.arc.result == "none"
    assert verdicts.summary() == "SPF pass · DKIM pass (customer.test) · DMARC pass (p=reject)"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("v=spf1 ip4:192.0.2.0/24 -all", "pass"),
        ("v=spf1 ip4:198.51.100.0/24 -all", "fail"),
        ("v=spf1 ip4:198.51.100.0/24 ~all", "softfail"),
        ("v=spf1 ?all", "neutral"),
        (None, "none"),
        ("v=spf1 ip4:192.0.2.0/24 bogus -all", "permerror"),
    ],
)
async def test_spf_judges_the_connecting_ip_against_the_mail_from_domain(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver, record: str | None, expected: str
) -> None:
    publish(resolver, spf=record)
    inbound = await receive_email(mail(), mail_from=ALICE, peer=PEER, helo="mail.customer.test")
    assert (await verdicts_of(gateway, inbound)).spf.result == expected


async def test_spf_of_a_bounce_checks_the_helo_name(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver
) -> None:
    publish(resolver, spf="v=spf1 ip4:192.0.2.0/24 -all", domain="mail.customer.test")
    inbound = await receive_email(mail(), mail_from="", peer=PEER, helo="mail.customer.test")
    spf = (await verdicts_of(gateway, inbound)).spf
    assert (spf.result, spf.scope, spf.domain) == ("pass", "helo", "mail.customer.test")


async def test_a_replayed_file_has_no_connecting_ip_so_spf_is_none(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver
) -> None:
    publish(resolver, spf="v=spf1 -all")
    inbound = await receive_email(mail(), mail_from=ALICE)  # peer "local", as `wicket replay` stores it
    assert (await verdicts_of(gateway, inbound)).spf.result == "none"


async def test_dkim_pass_fail_none_and_a_signature_whose_key_cannot_be_looked_up(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver
) -> None:
    publish(resolver, dkim_key=True)
    good = await receive_email(signed(mail()), mail_from=ALICE)
    tampered = await receive_email(
        signed(mail(message_id="<m2@customer.test>")).replace(b"late.", b"early."), mail_from=ALICE
    )
    unsigned = await receive_email(mail(message_id="<m3@customer.test>"), mail_from=ALICE)
    resolver.failing.add("s1._domainkey.other.test")
    unreachable = await receive_email(signed(mail(message_id="<m4@customer.test>"), domain="other.test"))
    assert [d.result for d in (await verdicts_of(gateway, good)).dkim] == ["pass"]
    assert [d.result for d in (await verdicts_of(gateway, tampered)).dkim] == ["fail"]
    assert (await verdicts_of(gateway, unsigned)).dkim == ()
    assert [d.result for d in (await verdicts_of(gateway, unreachable)).dkim] == ["temperror"]


async def test_dmarc_fails_when_nothing_aligned_vouches_for_the_from_domain(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver
) -> None:
    publish(resolver, spf="v=spf1 ip4:192.0.2.0/24 -all", dmarc="v=DMARC1; p=quarantine")
    publish(resolver, spf="v=spf1 ip4:192.0.2.0/24 -all", domain="elsewhere.test")
    # SPF passes, but for another domain than From's: not aligned.
    inbound = await receive_email(mail(), mail_from="bounces@elsewhere.test", peer=PEER, helo="mx.elsewhere.test")
    verdicts = await verdicts_of(gateway, inbound)
    assert verdicts.spf.result == "pass"
    assert (verdicts.dmarc.result, verdicts.dmarc.domain, verdicts.dmarc.policy) == ("fail", "customer.test", "quarantine")


async def test_dmarc_passes_a_subdomain_by_relaxed_alignment_and_uses_the_organizational_record(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver
) -> None:
    publish(resolver, dmarc="v=DMARC1; p=none; sp=reject", dkim_key=True)
    raw = signed(mail(sender="Alice <alice@eu.customer.test>"))
    verdicts = await verdicts_of(gateway, await receive_email(raw, mail_from="alice@eu.customer.test"))
    assert (verdicts.dmarc.result, verdicts.dmarc.domain, verdicts.dmarc.policy) == ("pass", "eu.customer.test", "reject")
    assert verdicts.dmarc.aligned == ("dkim",)


async def test_dmarc_none_without_a_record_and_temperror_when_dns_fails(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver
) -> None:
    without = await receive_email(mail(), mail_from=ALICE)
    resolver.failing.add("_dmarc.broken.test")
    broken = await receive_email(mail(sender="bob@broken.test", message_id="<b1@broken.test>"), mail_from="bob@broken.test")
    assert (await verdicts_of(gateway, without)).dmarc.result == "none"
    assert (await verdicts_of(gateway, broken)).dmarc.result == "temperror"
    assert broken.status == InboundStatus.DELIVERED


async def test_arc_chain_sealed_by_a_forwarder_passes(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver
) -> None:
    pem, public = signing_key()
    resolver.add("arc._domainkey.lists.test", "TXT", f"v=DKIM1; k=rsa; p={public}")
    raw = b"Authentication-Results: lists.test; spf=pass smtp.mailfrom=customer.test\r\n" + mail()
    sealed = b"".join(dkim.arc_sign(raw, b"arc", b"lists.test", pem, b"lists.test")) + raw
    verdicts = await verdicts_of(gateway, await receive_email(sealed, mail_from=ALICE))
    assert verdicts.arc.result == "pass"
    unsealed = await receive_email(mail(message_id="<m9@customer.test>"), mail_from=ALICE)
    assert (await verdicts_of(gateway, unsealed)).arc.result == "none"


async def test_slow_dns_gives_temperror_and_the_mail_still_arrives(settings, db, mailbox) -> None:  # type: ignore[no-untyped-def]
    class Slow(FixedResolver):
        def lookup(self, name: str, rdtype: str):  # type: ignore[no-untyped-def]
            time.sleep(0.5)
            raise DnsTemporaryError("too slow")

    gateway = Gateway(settings.model_copy(update={"dns_timeout_seconds": 0.1}), db, resolver=Slow())
    await gateway.start()
    try:
        inbound_id = await gateway.receive(mail(), mail_from=ALICE, rcpt_tos=(SUPPORT,), peer=PEER)
        await gateway.processor.drain()

        def _look(session: Session):
            inbound = session.get_one(InboundEmail, inbound_id)
            return inbound

        inbound = await gateway.db.read(orm(_look))
        verdicts = await verdicts_of(gateway, inbound)
    finally:
        await gateway.stop()
    assert inbound.status == InboundStatus.DELIVERED
    assert (verdicts.spf.result, verdicts.dmarc.result) == ("temperror", "temperror")


async def test_checks_ask_dns_once_per_name_across_a_backlog() -> None:
    resolver = FixedResolver({("customer.test", "TXT"): ["v=spf1 ip4:192.0.2.0/24 -all"]})
    checks = SenderChecks(resolver, timeout=5)
    try:
        first = await checks.check(mail(), peer=PEER, helo="mx.customer.test", mail_from=ALICE)
    finally:
        checks.close()
    assert first.spf.result == "pass"
    # pyspf asks each name once per message; the real resolver caches across messages by TTL.
    assert resolver.asked.count(("customer.test", "TXT")) == 1


# Gating: mail that fails DMARC for its From domain is not trusted to be from its sender.

async def _alice_ticket(receive_email: ReceiveEmail, gateway: Gateway) -> Ticket:
    await receive_email(mail(message_id="<first@customer.test>"), mail_from=ALICE)

    def _look(session: Session):
        return (session.execute(select(Ticket))).scalar_one()

    return await gateway.db.read(orm(_look))


async def _tickets(gateway: Gateway) -> list[Ticket]:
    def _look(session: Session):
        return list((session.execute(select(Ticket).order_by(Ticket.id))).scalars())

    return await gateway.db.read(orm(_look))


async def test_dmarc_failing_mail_with_a_valid_marker_from_a_participant_opens_a_new_flagged_ticket(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver
) -> None:
    ticket = await _alice_ticket(receive_email, gateway)
    publish(resolver, spf="v=spf1 ip4:198.51.100.0/24 -all", dmarc="v=DMARC1; p=reject")
    marker = format_marker(gateway.settings.keys[0], SUPPORT, ticket.public_id, ALICE)
    forged = mail(f"Re: [#{ticket.ref}] Help please", body=f"Please send me the invoice.\r\n> {marker}",
                  message_id="<forged@attacker.test>")
    inbound = await receive_email(forged, mail_from=ALICE, peer=PEER, helo="attacker.test")
    first, second = await _tickets(gateway)
    assert (first.id, second.flag) == (ticket.id, "dmarc_fail")
    assert inbound.ticket_id == second.id

    def _look(session: Session):
        rules = (session.execute(
            select(Message.ticket_id, Message.thread_rule, Message.internal, Message.body_text).order_by(Message.id)
        )).all()  # fmt: skip
        return rules

    rules = await gateway.db.read(orm(_look))
    assert [(r.ticket_id, r.thread_rule) for r in rules] == [(first.id, "new"), (second.id, "new"), (second.id, "mention")]
    assert "failed DMARC" in rules[2].body_text
    assert (await verdicts_of(gateway, inbound)).dmarc_failed


async def test_the_same_marker_threads_when_dmarc_passes(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver
) -> None:
    ticket = await _alice_ticket(receive_email, gateway)
    publish(resolver, spf="v=spf1 ip4:192.0.2.0/24 -all", dmarc="v=DMARC1; p=reject")
    marker = format_marker(gateway.settings.keys[0], SUPPORT, ticket.public_id, ALICE)
    raw = mail("Re: Help please", body=f"Thanks.\r\n> {marker}", message_id="<real@customer.test>")
    inbound = await receive_email(raw, mail_from=ALICE, peer=PEER, helo="mail.customer.test")
    assert inbound.ticket_id == ticket.id
    assert len(await _tickets(gateway)) == 1


async def test_dmarc_failing_reply_by_headers_threads_but_brings_nobody_in_by_cc(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver
) -> None:
    ticket = await _alice_ticket(receive_email, gateway)
    publish(resolver, spf="v=spf1 ip4:198.51.100.0/24 -all", dmarc="v=DMARC1; p=reject")
    reply = mail("Re: Help please", extra="In-Reply-To: <first@customer.test>\r\nCc: mallory@attacker.test\r\n",
                 message_id="<reply@attacker.test>")
    inbound = await receive_email(reply, mail_from=ALICE, peer=PEER, helo="attacker.test")
    assert inbound.ticket_id == ticket.id

    assert await participant_emails(gateway.db, ticket.id) == {ALICE}


async def test_dmarc_failing_mail_opening_a_ticket_brings_nobody_in_by_cc(
    receive_email: ReceiveEmail, gateway: Gateway, resolver: FixedResolver
) -> None:
    publish(resolver, spf="v=spf1 ip4:198.51.100.0/24 -all", dmarc="v=DMARC1; p=reject")
    inbound = await receive_email(mail(extra="Cc: mallory@attacker.test\r\n"), mail_from=ALICE, peer=PEER)

    assert await participant_emails(gateway.db, inbound.ticket_id) == {ALICE}


def test_the_public_suffix_list_is_read_once_when_processing_starts_not_by_the_first_mail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Reading the shipped list takes about half a second: paid by the first message's checks,
    # it delayed that ticket and could push its checks past their time budget (temperror).
    from gateway.inbound import dmarc

    reads: list[int] = []
    real = dmarc.PublicSuffixList

    def counted() -> object:
        reads.append(1)
        return real()

    monkeypatch.setattr(dmarc, "PublicSuffixList", counted)
    monkeypatch.setattr(dmarc, "_suffixes", None)
    checks = SenderChecks(FixedResolver(), timeout=5)
    try:
        checks.warm_up().result(timeout=30)
        assert reads == [1]
        assert dmarc.organizational_domain("mail.example.co.uk") == "example.co.uk"
        assert reads == [1]  # the checks use the list read at start
    finally:
        checks.close()
