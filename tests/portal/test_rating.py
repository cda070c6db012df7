"""Satisfaction: the resolved mail asks "How did we do?"; a rating counts on POST only, once per resolution."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import Agent, OutboxMessage, RatingLink, SatisfactionRating, Ticket, TicketStatus
from gateway.storage.database import orm
from gateway.tickets.commands import Commands
from gateway.tickets.queries import show_ticket
from gateway.tickets.replies import AgentReply, apply_reply
from tests.mailflow import ALICE, TOM, add_tom, settle, text_of
from tests.portal.helpers import Client, audit_events, post_form
from tests.support import ReceiveEmail

RATING_LINK = re.compile(r"http://portal\.example\.test(/rate/[A-Za-z0-9_-]{43})\?rating=(good|bad)")


async def resolve(gateway: Gateway, status: TicketStatus = TicketStatus.RESOLVED, text: str = "") -> None:
    agent = await add_tom(gateway)

    def _change(session: Session):
        ticket = session.scalar(select(Ticket))
        assert ticket is not None
        apply_reply(session, gateway.events, ticket, session.get_one(Agent, agent.id), AgentReply(text, Commands(status=status)),
                    thread_rule="api")  # fmt: skip

    await gateway.db.write(_change)


async def rating_links(gateway: Gateway) -> dict[str, str]:
    [*_, resolved] = (await settle(gateway)).to(ALICE)
    links = {answer: path for path, answer in RATING_LINK.findall(text_of(resolved).replace("=\r\n", ""))}
    assert set(links) == {"good", "bad"} and "How did we do?" in text_of(resolved)
    return links


async def ratings(gateway: Gateway) -> list[SatisfactionRating]:
    def _look(session: Session):
        return list((session.scalars(select(SatisfactionRating))).all())

    return await gateway.db.read(orm(_look))


async def test_the_resolved_mail_asks_how_we_did_and_keeps_no_rating_token(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await receive_email("new-request.eml")
    await resolve(gateway)
    links = await rating_links(gateway)
    token = links["good"].rsplit("/", 1)[1]

    def _look(session: Session):
        kept = b"".join(row.raw or b"" for row in (session.scalars(select(OutboxMessage))).all())
        stored = (session.scalars(select(RatingLink))).all()
        return kept, stored

    kept, stored = await gateway.db.read(orm(_look))
    assert token.encode() not in kept and b"[rating link sent]" in kept
    assert len(stored) == 1 and token not in stored[0].token_hmac


async def test_opening_a_rating_link_rates_nothing_and_its_post_rates_once(
    gateway: Gateway, receive_email: ReceiveEmail, client: Client
) -> None:
    await receive_email("new-request.eml")
    await resolve(gateway)
    links = await rating_links(gateway)

    assert (await client.head(links["good"])).status == 200
    page = await client.get(links["good"] + "?rating=good")
    assert page.status == 200 and "How did we do?" in await page.text()
    assert page.headers["Referrer-Policy"] == "no-referrer" and await ratings(gateway) == []

    done = await post_form(client, links["good"], {"rating": "good", "comment": "Fast and friendly."})
    assert done.status == 200 and "Thank you" in await done.text()
    again = await post_form(client, links["bad"], {"rating": "bad"}, page="/login")
    assert "Already answered" in await again.text()
    [rating] = await ratings(gateway)
    assert rating.good and rating.comment == "Fast and friendly."
    assert [e.detail["rating"] for e in await audit_events(gateway.db, "ticket.rated")] == ["good"]

    [notice] = [m for m in (await settle(gateway)).to(TOM) if "rated" in text_of(m)]
    assert "rated [#1001] as resolved: good" in text_of(notice) and "Fast and friendly." in text_of(notice)
    shown = await show_ticket(gateway.db, 1001)
    assert [(r["rating"], r["comment"], r["by"]) for r in shown["ratings"]] == [("good", "Fast and friendly.", ALICE)]


async def test_a_ticket_resolved_again_can_be_rated_again(gateway: Gateway, receive_email: ReceiveEmail,
                                                          client: Client) -> None:  # fmt: skip
    await receive_email("new-request.eml")
    await resolve(gateway)
    first = await rating_links(gateway)
    await post_form(client, first["bad"], {"rating": "bad"})
    await resolve(gateway, TicketStatus.OPEN)
    await resolve(gateway, text="Fixed properly this time.")
    second = await rating_links(gateway)
    assert (await post_form(client, second["good"], {"rating": "good"})).status == 200
    assert [r.good for r in await ratings(gateway)] == [False, True]


async def test_a_made_up_rating_link_is_refused_with_a_friendly_page(client: Client) -> None:
    page = await client.get("/rate/" + "x" * 43)
    assert page.status == 404 and "This link does not work" in await page.text()
    posted = await post_form(client, "/rate/" + "x" * 43, {"rating": "good"}, page="/login")
    assert posted.status == 404
