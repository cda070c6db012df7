"""Agent commands: the `#word …` lines at the top of an agent's reply, read and carried out.

The same commands work on the first lines of an agent's email, in `wicket reply` and in the
agent API's reply text:

    #internal                      the text is an internal note, not a reply
    #status open|pending|resolved|closed
    #assign me|<name>|<address>    the ticket's owner (an agent of the ticket's mailbox)
    #unassign
    #priority low|normal|high|urgent
    #tag <word>…                   adds tags (lower case; letters, digits, - _ .)
    #cc addr, Name <addr>…         adds participants (gateway/tickets/replies.py adds them
                                   before the reply goes out, so they receive it)
    #requester addr                names the requester of a ticket whose mail named no
                                   usable sender (gateway/tickets/requester.py), before
                                   the reply goes out

`read_commands` takes command lines off the top until the first line that is not one and
returns them with the text below; a line that looks like a command but is not understood
is kept in `Commands.problems` (the caller refuses the whole reply and tells the agent,
never the customer). `apply_commands` carries out the ticket changes (not `#internal`
`#cc` and `#requester`, which the reply itself uses), each through
`gateway.tickets.status.record_change` (an event and an audit row) plus a note.
A new command is one entry in `_READERS` and, when it changes the ticket, one step in
`apply_commands`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.utils import getaddresses
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gateway.models import Agent, MailboxMembership, Message, Ticket, TicketPriority, TicketStatus
from gateway.tickets.events import EventBus
from gateway.tickets.notes import add_note
from gateway.tickets.status import record_change, set_status

_COMMAND_LINE = re.compile(r"#([A-Za-z][A-Za-z-]*)(?:\s+(.*))?")
_TAG = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
MAX_TAGS = 20


@dataclass(frozen=True, slots=True)
class Commands:
    """What the command lines of one reply ask for."""

    internal: bool = False
    status: TicketStatus | None = None
    assign: str | None = None  # "me", an agent's name or address
    unassign: bool = False
    priority: TicketPriority | None = None
    tags: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()  # addresses to add as participants
    requester: str | None = None  # the address to make the requester of a ticket without one
    problems: tuple[str, ...] = field(default=())  # lines not understood, each with why

    @property
    def changes_ticket(self) -> bool:
        return bool(
            self.status or self.assign or self.unassign or self.priority or self.tags or self.cc or self.requester
        )


def _choice(kind: type[TicketStatus | TicketPriority], name: str) -> Callable[[Commands, str], Commands]:
    def read(commands: Commands, argument: str) -> Commands:
        try:
            return replace(commands, **{name: kind(argument.strip().lower())})
        except ValueError:
            choices = "|".join(choice.value for choice in kind)
            raise ValueError(f"write it as '#{name} {choices}'") from None

    return read


def _no_argument(name: str, **values: Any) -> Callable[[Commands, str], Commands]:
    def read(commands: Commands, argument: str) -> Commands:
        if argument.strip():
            raise ValueError(f"'#{name}' takes nothing after it")
        return replace(commands, **values)

    return read


def _assign(commands: Commands, argument: str) -> Commands:
    if not argument.strip():
        raise ValueError("write it as '#assign me', '#assign <name>' or '#assign <address>'")
    return replace(commands, assign=argument.strip())


def _tag(commands: Commands, argument: str) -> Commands:
    words = argument.lower().split()
    bad = [word for word in words if not _TAG.fullmatch(word)]
    if not words or bad:
        raise ValueError("write it as '#tag word' (letters, digits, '-', '_' or '.')")
    return replace(commands, tags=tuple(dict.fromkeys((*commands.tags, *words))))


def _cc(commands: Commands, argument: str) -> Commands:
    rest = argument.replace(";", ",")
    if "<" in rest:  # Name <address>, as mail clients write them
        addresses = [address for _, address in getaddresses([rest]) if address]
    else:
        addresses = [a for a in re.split(r"[,\s]+", rest) if a]
    if not addresses or not all(a.count("@") == 1 and a.partition("@")[0] and "." in a for a in addresses):
        raise ValueError("write the people to add as '#cc name@example.com' (one or more addresses)")
    return replace(commands, cc=tuple(dict.fromkeys((*commands.cc, *(a.lower() for a in addresses)))))


def _requester(commands: Commands, argument: str) -> Commands:
    found = [address for _, address in getaddresses([argument.strip()]) if address]
    if len(found) != 1:
        raise ValueError("write it as '#requester name@example.com' (one address)")
    return replace(commands, requester=found[0].strip().lower())


_READERS: dict[str, Callable[[Commands, str], Commands]] = {
    "internal": _no_argument("internal", internal=True),
    "status": _choice(TicketStatus, "status"),
    "assign": _assign,
    "unassign": _no_argument("unassign", unassign=True),
    "priority": _choice(TicketPriority, "priority"),
    "tag": _tag,
    "cc": _cc,
    "requester": _requester,
}


def read_commands(text: str) -> tuple[Commands, str]:
    """The command lines at the top of `text` and the text below them."""
    lines = text.strip().splitlines()
    commands = Commands()
    while lines:
        line = lines[0].strip()
        if not line:
            lines.pop(0)
            continue
        found = _COMMAND_LINE.fullmatch(line)
        if found is None:
            break
        name, argument = found.group(1).lower(), found.group(2) or ""
        reader = _READERS.get(name)
        try:
            if reader is None:
                raise ValueError(f"there is no command '#{name}' (known: {', '.join('#' + n for n in _READERS)})")
            commands = reader(commands, argument)
        except ValueError as why:
            commands = replace(commands, problems=(*commands.problems, f"{line[:80]!r}: {why}"))
        lines.pop(0)
    return commands, "\n".join(lines).strip()


class AssignError(ValueError):
    """`#assign` names nobody who works the ticket's mailbox."""


def find_assignee(session: Session, ticket: Ticket, agent: Agent, who: str) -> Agent:
    """The agent `who` names ("me", an address or a name, any case) among the mailbox's agents."""
    if who.lower() == "me":
        return agent
    wanted = who.strip().lower()
    found = session.scalars(
        select(Agent)
        .join(MailboxMembership, MailboxMembership.agent_id == Agent.id)
        .where(
            MailboxMembership.mailbox_id == ticket.mailbox_id,
            Agent.active.is_(True),
            or_(Agent.email == wanted, func.lower(Agent.name) == wanted),
        )
    ).all()
    if len(found) != 1:
        problem = "more than one agent is called" if found else "no agent of this mailbox is"
        raise AssignError(f"'#assign {who}': {problem} {who!r}; use their address")
    return found[0]


def set_owner(
    session: Session, events: EventBus, ticket: Ticket, owner: Agent | None, *, agent: Agent | None, reason: str
) -> bool:
    """Make `owner` (None: nobody) the ticket's owner; False when it already was."""
    new_id = owner.id if owner else None
    if ticket.owner_agent_id == new_id:
        return False
    before = session.get(Agent, ticket.owner_agent_id) if ticket.owner_agent_id else None
    ticket.owner_agent_id = new_id
    record_change(
        session, events, ticket, "owner", before.email if before else "", owner.email if owner else "",
        agent=agent, reason=reason,
    )
    return True


def apply_commands(
    session: Session,
    events: EventBus,
    ticket: Ticket,
    agent: Agent,
    commands: Commands,
    *,
    announce: bool = True,
    **origin: Any,
) -> list[Message]:
    """Carry out the ticket changes `commands` ask for; returns the notes recording them.

    `origin` (the email the commands came in, if any) goes on the first note written;
    `announce` false: a resolution is already told to the customers by the reply itself.
    """
    notes: list[Message] = []
    who = agent.name or agent.email

    def note(text: str) -> None:
        notes.append(add_note(session, ticket, text, agent=agent, **({} if notes else origin)))

    if commands.assign is not None:
        owner = find_assignee(session, ticket, agent, commands.assign)
        if set_owner(session, events, ticket, owner, agent=agent, reason="agent"):
            note(f"{who} assigned the ticket to {owner.name or owner.email}.")
    elif commands.unassign and set_owner(session, events, ticket, None, agent=agent, reason="agent"):
        note(f"{who} unassigned the ticket.")
    if commands.priority is not None and ticket.priority != commands.priority:
        before, ticket.priority = ticket.priority, commands.priority
        record_change(session, events, ticket, "priority", before, commands.priority, agent=agent)
        note(f"{who} changed the priority from {before} to {commands.priority}.")
    added = [tag for tag in commands.tags if tag not in ticket.tags][: max(0, MAX_TAGS - len(ticket.tags))]
    if added:
        before_tags = list(ticket.tags)
        ticket.tags = [*before_tags, *added]
        record_change(session, events, ticket, "tags", " ".join(before_tags), " ".join(ticket.tags), agent=agent)
        note(f"{who} tagged the ticket {' '.join(added)}.")
    if commands.status is not None:
        first = {} if notes else origin
        changed = set_status(session, events, ticket, commands.status, agent=agent, announce=announce, **first)
        if changed is not None:
            notes.append(changed)
    return notes
