"""Mail that claims to come from the mailbox itself is kept but never acknowledged.

Anyone can put the mailbox's own address in From; acknowledging it would have Wicket mail
itself (or, through a forwarder, mail a loop). The message is still stored on a ticket, as
every message is.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import InboundStatus, Message, OutboxMessage
from gateway.outbound.compose import OutboundKind
from gateway.storage.database import orm
from tests.mailflow import build_mail, settle
from tests.support import SUPPORT, ReceiveEmail


@pytest.mark.parametrize(
    "from_header",
    [SUPPORT, f"Example Support <{SUPPORT.upper()}>", "Someone <support+sales@example.test>"],
)
async def test_mail_from_the_mailbox_address_is_stored_and_not_acknowledged(
    gateway: Gateway, receive_email: ReceiveEmail, from_header: str
) -> None:
    inbound = await receive_email(
        build_mail(sender=from_header, to=SUPPORT, subject="Your invoice", body="Pay now.\n"), mail_from=SUPPORT
    )
    assert inbound.status == InboundStatus.DELIVERED and inbound.ticket_id is not None
    sender = await settle(gateway)

    def look(session: Session):
        stored = session.scalars(select(Message).where(Message.inbound_email_id == inbound.id)).all()
        kinds = session.scalars(select(OutboxMessage.kind)).all()
        return stored, kinds

    stored, kinds = await gateway.db.read(orm(look))
    assert len(stored) == 1 and stored[0].body_text.strip() == "Pay now."
    assert OutboundKind.ACKNOWLEDGEMENT not in kinds
    assert sender.sent == []


async def test_the_same_mail_from_a_customer_is_acknowledged(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    """The control: only the sender differs."""
    await receive_email(
        build_mail(sender="Bob <bob@customer.test>", to=SUPPORT, subject="Your invoice", body="Pay now.\n"),
        mail_from="bob@customer.test",
    )
    assert len((await settle(gateway)).to("bob@customer.test")) == 1
