"""The daily digest: opt-in, after the mailbox's hour, exactly once per agent and day, across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.directory.preferences import set_digest_hour, set_preferences
from gateway.models import Message, NotifyPolicy, Ticket, TicketStatus
from gateway.settings import Settings
from gateway.storage.database import Database
from tests.mailflow import ALICE, TOM, build_mail, settle, text_of
from tests.support import SUPPORT, ReceiveEmail
from tests.tickets.helpers import ANN, add_agents, answer, ticket

MORNING = datetime.now(UTC).replace(hour=9, minute=5, second=0, microsecond=0)


async def three_tickets(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    """#1001 waits on the team for two days, #1002 Tom answered, #1003 is resolved."""
    await add_agents(gateway, (TOM, "Tom Agent"), (ANN, "Ann Agent"))
    for subject in ("Printer jammed", "Invoice missing", "Password reset"):
        await receive_email(build_mail(sender=ALICE, to=SUPPORT, subject=subject, body=f"{subject}, please help.\n"))
    sender = await settle(gateway)
    notifications = {m.message["Subject"].split("] ")[-1]: m for m in sender.to(TOM)}
    await answer(receive_email, notifications["Invoice missing"], TOM, "Sent again.\n", name="Tom Agent")
    await answer(receive_email, notifications["Password reset"], TOM, "#status resolved\nDone.\n", name="Tom Agent")
    await settle(gateway)

    def _change(session: Session):
        two_days_ago = MORNING - timedelta(days=2)
        first = select(Ticket.id).where(Ticket.ref == 1001).scalar_subquery()
        session.execute(update(Message).where(Message.ticket_id == first).values(created_at=two_days_ago))
        session.execute(update(Ticket).where(Ticket.ref == 1001).values(created_at=two_days_ago))

    await gateway.db.write(_change)


async def test_an_agent_who_asked_gets_one_digest_a_day_after_the_mailboxs_hour(
    gateway: Gateway, settings: Settings, db: Database, receive_email: ReceiveEmail
) -> None:
    await three_tickets(gateway, receive_email)
    await db.write(lambda s: set_preferences(s, ANN, daily_digest=True))
    await db.write(lambda s: set_digest_hour(s, SUPPORT, 9))
    assert (await gateway.periodic.run_once(MORNING - timedelta(hours=1))).digests == 0, "before the hour"
    assert (await gateway.periodic.run_once(MORNING)).digests == 1
    assert (await gateway.periodic.run_once(MORNING + timedelta(hours=3))).digests == 0, "once a day"
    restarted = Gateway(settings, db)
    await restarted.start()
    try:
        assert (await restarted.periodic.run_once(MORNING + timedelta(hours=4))).digests == 0, "also after a restart"
        assert (await restarted.periodic.run_once(MORNING + timedelta(days=1))).digests == 1, "and again tomorrow"
    finally:
        await restarted.stop()
    sender = await settle(gateway)
    [today, tomorrow] = [m for m in sender.to(ANN) if "daily digest" in m.message["Subject"]]
    assert sender.to(TOM) and not [m for m in sender.to(TOM) if "daily digest" in m.message["Subject"]]
    text = text_of(today)
    assert "2 open, 1 unassigned, 1 waiting on the team for more than 24 hours" in text
    waiting = text.split("Waiting on the team")[1].split("Unassigned:")[0]
    assert "[#1001] Printer jammed" in waiting and "waiting 2 days" in waiting and "#1002" not in waiting
    unassigned = text.split("Unassigned:")[1].split("Open tickets")[0]
    assert "[#1001]" in unassigned and "#1002" not in unassigned
    listed = text.split("Open tickets, oldest first:")[1]
    assert listed.index("[#1001]") < listed.index("[#1002]") and "#1003" not in listed and "Tom Agent" in listed
    assert today.message["Auto-Submitted"] == "auto-generated" and tomorrow.message["To"].endswith(f"<{ANN}>")


async def test_the_digest_follows_the_agents_notification_policy(
    gateway: Gateway, db: Database, receive_email: ReceiveEmail
) -> None:
    await three_tickets(gateway, receive_email)
    await db.write(lambda s: set_preferences(s, ANN, daily_digest=True, policy=NotifyPolicy.MINE))
    await gateway.periodic.run_once(MORNING.replace(hour=23))
    [digest] = [m for m in (await settle(gateway)).to(ANN) if "daily digest" in m.message["Subject"]]
    text = text_of(digest)
    assert "0 open, 1 unassigned" in text and "Open tickets, oldest first" not in text
    assert (await ticket(gateway, 1003)).status == TicketStatus.RESOLVED
