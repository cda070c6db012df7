"""Mail to the team beyond the notifications: who follows a ticket, colleague copies, notices.

An agent's notification policy for a mailbox (`MailboxMembership.notify_policy`) says which
tickets they follow: every ticket, only theirs and unassigned ones, or only theirs.
`follows` is that rule, used for notifications of new tickets and customer messages
(gateway/outbound/notify.py) and here for colleague copies: when one agent answers a
customer, every other agent who follows the ticket and wants to hear of its messages gets
a short copy, so two people do not answer the same customer. A copy threads under the
ticket's other mail in the agent's client (In-Reply-To/References name the ticket's mail
before it, Thread-Index keeps Outlook's thread), says in its text that it is a copy of
what went to the customer, and its Reply-To is the colleague's own signed address. An agent whose
emailed reply could not be carried out is mailed why (`AgentAdvised`), never the customer.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.mail.quotes import REPLY_MARKER
from gateway.models import Agent, Contact, Mailbox, MailboxMembership, Message, NotifyPolicy, Ticket
from gateway.outbound.compose import OutboundKind
from gateway.outbound.drafts import Draft, queue_draft
from gateway.settings import Settings
from gateway.tickets.events import AgentAdvised, AgentReplied
from gateway.tickets.markers import subject_tag
from gateway.tickets.reply_address import ReplyAddress, format_reply_address

MAX_COPIED_TEXT = 20_000


def follows(policy: str, agent_id: int, owner_id: int | None) -> bool:
    """Whether an agent with `policy` hears about a ticket owned by `owner_id` (None: nobody)."""
    if policy == NotifyPolicy.MINE:
        return owner_id == agent_id
    if policy == NotifyPolicy.MINE_AND_UNASSIGNED:
        return owner_id in (None, agent_id)
    return True


def agent_reply_address(settings: Settings, mailbox: Mailbox, ticket: Ticket, agent: Agent) -> str:
    return format_reply_address(ReplyAddress(mailbox.address, "a", ticket.public_id, agent.id), settings.keys[0])


def queue_team_mail(
    session: Session,
    settings: Settings,
    *,
    mailbox: Mailbox,
    ticket: Ticket,
    agent: Agent,
    kind: OutboundKind,
    template: str,
    context: dict[str, str],
    message: Message | None = None,
    from_name: str | None = None,
) -> None:
    """One email to `agent` about `ticket`, answerable through the agent's signed address."""
    address = agent_reply_address(settings, mailbox, ticket, agent)
    draft = Draft(
        template=template,
        context={"reply_line": REPLY_MARKER, **context},
        to_name=agent.name,
        to_email=agent.email,
        reply_to=address,
        automatic=True,
        for_customer=False,
        from_name=from_name,
    )
    queue_draft(session, mailbox=mailbox, ticket=ticket, kind=kind, draft=draft, envelope_from=address, message=message)


def _followers(session: Session, ticket: Ticket, but: Agent) -> list[Agent]:
    rows = session.execute(
        select(Agent, MailboxMembership.notify_policy)
        .join(MailboxMembership, MailboxMembership.agent_id == Agent.id)
        .where(
            MailboxMembership.mailbox_id == ticket.mailbox_id,
            MailboxMembership.notify_customer_message.is_(True),
            Agent.active.is_(True),
            Agent.id != but.id,
        )
        .order_by(Agent.id)
    )
    return [agent for agent, policy in rows if follows(policy, agent.id, ticket.owner_agent_id)]


def copy_to_colleagues(session: Session, settings: Settings, event: AgentReplied) -> None:
    """A short copy of an agent's reply to every other agent who follows the ticket."""
    ticket, replier = event.ticket, event.agent
    colleagues = _followers(session, ticket, replier)
    if not colleagues:
        return
    requester = session.get(Contact, ticket.requester_id) if ticket.requester_id is not None else None
    agent_name = replier.name or replier.email
    context = {
        "headline": f"{agent_name} answered {subject_tag(ticket)}",
        "text": event.message.body_text[:MAX_COPIED_TEXT],
        "agent_name": agent_name,
        "customer": (requester.name or requester.email) if requester else "the customer",
    }
    for colleague in colleagues:
        queue_team_mail(
            session, settings, mailbox=event.mailbox, ticket=ticket, agent=colleague,
            kind=OutboundKind.COLLEAGUE_COPY, template="colleague_reply", context=context,
            message=event.message, from_name=f"{agent_name} via {event.mailbox.display_name}",
        )


def advise_agent(session: Session, settings: Settings, event: AgentAdvised) -> None:
    """Tell the agent why their emailed reply went nowhere, with their text."""
    context = {"problem": event.problem, "text": event.text[:MAX_COPIED_TEXT] or "(nothing)"}
    queue_team_mail(
        session, settings, mailbox=event.mailbox, ticket=event.ticket, agent=event.agent,
        kind=OutboundKind.AGENT_NOTICE, template="agent_notice", context=context,
    )
