"""`wicket agents …`, `wicket reply …` and `wicket dkim …`: the support team's commands.

Each command opens the database, runs one service function from gateway.directory.agents,
gateway.tickets.replies or gateway.outbound.dkim in a transaction and prints the outcome; the functions are
the same ones the email workflow and the agent API use.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.support import in_unit, json_list, print_list, remove_by_id
from gateway.directory.agents import (
    AgentError,
    AgentSummary,
    active_agent,
    add_agent,
    create_api_key,
    list_agents,
    mailbox_ids_of,
    remove_agent,
    revoke_api_keys,
)
from gateway.directory.preferences import PreferenceError, parse_policy, set_preferences
from gateway.models import Mailbox, Message, NotifyPolicy, Ticket
from gateway.outbound import dkim
from gateway.outbound.notify import ticket_events
from gateway.settings import Settings
from gateway.tickets.events import EventBus
from gateway.tickets.files import FileRejected, check_files, team_file
from gateway.tickets.replies import AgentReply, ReplyError, apply_reply, read_reply

TEAM_ERRORS = (AgentError, ReplyError, FileRejected)


@click.group()
def agents() -> None:
    """Support agents: who is notified and who may answer by email."""


@agents.command("add")
@click.argument("email")
@click.option("--name", default="")
@click.option("--mailbox", "mailboxes", multiple=True, help="Join only these mailboxes (default: all).")
@click.option("--new-ticket-mail/--no-new-ticket-mail", default=True, help="Email me about new tickets.")
@click.option("--reply-mail/--no-reply-mail", default=True, help="Email me when customers reply.")
def agents_add(email: str, name: str, mailboxes: tuple[str, ...], new_ticket_mail: bool, reply_mail: bool) -> None:
    agent = in_unit(lambda session, _settings: add_agent(
        session, email, name, list(mailboxes) or None,
        notify_new_tickets=new_ticket_mail, notify_customer_messages=reply_mail,
    ), errors=TEAM_ERRORS)
    click.echo(f"agent {agent.email} is ready")


@agents.command("list")
@json_list
def agents_list(as_json: bool) -> None:
    """Who is on the team, whether they are active, and the mailboxes they work."""
    print_list(in_unit(lambda session, _settings: list_agents(session), errors=TEAM_ERRORS), as_json=as_json,
               line=_agent_line, empty="no agents yet; add one with `wicket agents add EMAIL --name NAME`")


def _agent_line(agent: AgentSummary) -> str:
    return f"{agent.email}  {agent.name}{'' if agent.active else ' (removed)'}  {', '.join(agent.mailboxes) or '-'}"


@agents.command("remove")
@click.argument("email")
def agents_remove(email: str) -> None:
    """Take an agent off the team: no notifications, emailed replies or API keys from now on."""
    remove_by_id("agent", email, remove_agent, errors=TEAM_ERRORS,
                 then=f"; `wicket agents add {email}` brings them back")


@agents.command("set-notify")
@click.argument("email")
@click.option("--policy", type=click.Choice([p.value.replace("_", "-") for p in NotifyPolicy]), default=None,
              help="Which tickets to hear about: all, mine-and-unassigned or mine.")
@click.option("--digest/--no-digest", default=None, help="A daily digest of the mailbox's open tickets.")
@click.option("--mailbox", "mailboxes", multiple=True, help="Only these mailboxes (default: all the agent's).")
def agents_set_notify(email: str, policy: str | None, digest: bool | None, mailboxes: tuple[str, ...]) -> None:
    """Which tickets an agent is emailed about, and whether they get the daily digest."""
    if policy is None and digest is None:
        raise click.UsageError("give --policy, --digest or --no-digest")
    chosen = parse_policy(policy) if policy else None
    found = in_unit(lambda session, _settings: set_preferences(
        session, email, mailboxes=list(mailboxes) or None, policy=chosen, daily_digest=digest,
    ), errors=(PreferenceError,))
    for p in found:
        digest_text = f"digest at {p.digest_hour:02d}:00 UTC" if p.daily_digest else "no digest"
        click.echo(f"{p.mailbox}: {p.policy.replace('_', '-')}, {digest_text}")


@agents.command("key")
@click.argument("email")
@click.option("--label", default="", help="What the key is for, e.g. 'CRM sync'.")
def agents_key(email: str, label: str) -> None:
    """Create an API key for the agent API (shown once; only its digest is kept)."""
    click.echo(in_unit(lambda session, _settings: create_api_key(session, email, label), errors=TEAM_ERRORS))


@agents.command("revoke-keys")
@click.argument("email")
def agents_revoke_keys(email: str) -> None:
    revoked = in_unit(lambda session, _settings: revoke_api_keys(session, email), errors=TEAM_ERRORS)
    click.echo(f"revoked {revoked} key(s)")


@click.command()
@click.argument("ref")
@click.argument("text")
@click.option("--as", "agent_email", required=True, help="The answering agent's address.")
@click.option("--mailbox", default=None, help="Mailbox address, when REF exists in several.")
@click.option("--attach", "attach", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A file to send with the reply (repeat for more); the portal's upload limits apply.")
def reply(ref: str, text: str, agent_email: str, mailbox: str | None, attach: tuple[Path, ...]) -> None:
    """Answer ticket REF as an agent.

    "#internal", "#status X" or "#cc addr" on the first lines of TEXT work too.
    """
    if not ref.lstrip("#").isdigit():
        raise click.BadParameter("REF is a ticket number such as 1001")
    files = tuple(team_file(path.name, _read(path)) for path in attach)

    def answer(session: Session, settings: Settings) -> Message:
        check_files(files, settings, len(text))
        said = replace(read_reply(text), files=files)
        return reply_as_agent(session, ticket_events(settings), int(ref.lstrip("#")), agent_email, said,
                                    mailbox=mailbox)  # fmt: skip

    message = in_unit(answer, errors=TEAM_ERRORS)
    click.echo("internal note added" if message.internal else "reply queued for the customer")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise click.BadParameter(f"cannot read {path}: {error.strerror or error}", param_hint="--attach") from None


@click.group("dkim")
def dkim_group() -> None:
    """DKIM signing keys for outbound mail."""


@dkim_group.command("keygen")
@click.argument("domain")
def dkim_keygen(domain: str) -> None:
    """Create DOMAIN's signing key (kept if it exists) and print the DNS TXT record."""
    try:
        record = dkim.keygen(Settings(), domain)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    if not record.created:
        click.echo("existing key kept", err=True)
    click.echo(record.zone_line())


def reply_as_agent(
    session: Session,
    events: EventBus,
    ref: int,
    agent_email: str,
    reply: AgentReply,
    *,
    mailbox: str | None = None,
) -> Message:
    """`wicket reply`: the agent answers ticket `ref` (or adds a note, or changes status)."""
    agent = active_agent(session, agent_email)
    query = select(Ticket).where(Ticket.ref == ref, Ticket.mailbox_id.in_(mailbox_ids_of(session, agent)))
    if mailbox:
        query = query.join(Mailbox, Mailbox.id == Ticket.mailbox_id).where(Mailbox.address == mailbox.strip().lower())
    tickets = list(session.scalars(query).all())
    if not tickets:
        raise AgentError(f"no ticket #{ref} in {agent.email}'s mailboxes")
    if len(tickets) > 1:
        raise AgentError(f"ticket #{ref} exists in more than one mailbox; name one with --mailbox")
    return apply_reply(session, events, tickets[0], agent, reply, thread_rule="cli")
