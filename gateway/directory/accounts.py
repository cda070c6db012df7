"""Company accounts (B2B): who belongs together, and who may see whose tickets.

A contact belongs to an Account by an explicit membership or because their address is in
a domain an operator attached to it. Domains are never inferred, and free-mail providers
(gmail.com, outlook.com, gmx.*, …) are refused, since their users are strangers to each
other. Members see each other's tickets only where the account's `share_tickets` is on;
`sharing_accounts` (or, inside a larger statement, `with_sharing_accounts`) and
`shared_requesters` answer that question for the portal. The
`wicket accounts …` commands call `add_account`, `add_member`, `remove_member` and
`list_accounts`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    delete,
    func,
    literal,
    select,
    union,
)
from sqlalchemy.orm import Session, aliased

from gateway.directory.contacts import contact_for
from gateway.models import Account, AccountDomain, AccountMember, Contact

FREE_MAIL_DOMAINS = frozenset(
    """gmail.com googlemail.com outlook.com hotmail.com live.com msn.com passport.com yahoo.com
    ymail.com rocketmail.com icloud.com me.com mac.com aol.com aim.com web.de proton.me
    protonmail.com protonmail.ch pm.me mail.com email.com gmx.net gmx.de gmx.at gmx.ch gmx.com
    yandex.ru yandex.com zoho.com zohomail.com tutanota.com tutanota.de tuta.io tuta.com
    fastmail.com fastmail.fm hey.com qq.com 163.com 126.com sina.com mail.ru inbox.ru bk.ru
    list.ru t-online.de freenet.de posteo.de mailbox.org orange.fr wanadoo.fr free.fr sfr.fr
    laposte.net libero.it virgilio.it seznam.cz wp.pl o2.pl onet.pl interia.pl naver.com
    daum.net hanmail.net rediffmail.com bluewin.ch hushmail.com duck.com""".split()
)
FREE_MAIL_NAMES = frozenset({"gmx", "yahoo", "hotmail", "outlook", "live", "yandex", "aol", "gmail"})
_DOMAIN = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$")


class AccountError(ValueError):
    """An account change an operator asked for that cannot be made as given."""


@dataclass(frozen=True, slots=True)
class AccountSummary:
    name: str
    share_tickets: bool
    domains: tuple[str, ...]
    members: tuple[str, ...]


def is_free_mail(domain: str) -> bool:
    """Whether `domain` is a free-mail provider's (gmail.com, gmx.de, yahoo.co.uk, …)."""
    if domain in FREE_MAIL_DOMAINS:
        return True
    name, _, suffix = domain.partition(".")
    return name in FREE_MAIL_NAMES and all(len(part) <= 3 for part in suffix.split("."))


def normalize_domain(domain: str) -> str:
    """A lower-case ASCII domain fit to attach to an account; AccountError otherwise."""
    cleaned = domain.strip().lstrip("@").rstrip(".").lower()
    try:
        cleaned = cleaned.encode("idna").decode("ascii")
    except UnicodeError:
        raise AccountError(f"{domain!r} is not a domain name") from None
    if not _DOMAIN.match(cleaned):
        raise AccountError(f"{domain!r} is not a domain name like example.com")
    if is_free_mail(cleaned):
        raise AccountError(f"{cleaned} is a free-mail provider; add its users as members one by one instead")
    return cleaned


def _account(session: Session, name: str) -> Account:
    account = session.scalar(select(Account).where(Account.name == name.strip()))
    if account is None:
        raise AccountError(f"no account named {name!r}")
    return account


def add_account(
    session: Session, name: str, *, domains: Iterable[str] = (), share_tickets: bool | None = None
) -> Account:
    """Create the account (or update an existing one) and attach `domains` to it."""
    name = " ".join(name.split())
    if not name:
        raise AccountError("an account needs a name")
    cleaned = [normalize_domain(d) for d in domains]
    account = session.scalar(select(Account).where(Account.name == name))
    if account is None:
        account = Account(name=name, share_tickets=bool(share_tickets))
        session.add(account)
        session.flush()
    elif share_tickets is not None:
        account.share_tickets = share_tickets
    for domain in cleaned:
        owner = session.scalar(select(AccountDomain).where(AccountDomain.domain == domain))
        if owner is not None and owner.account_id != account.id:
            raise AccountError(f"{domain} already belongs to another account")
        if owner is None:
            session.add(AccountDomain(account_id=account.id, domain=domain))
    session.flush()
    return account


def add_member(session: Session, account_name: str, email: str) -> AccountMember:
    """Make the contact with `email` (created if new) an explicit member of the account."""
    account = _account(session, account_name)
    contact = contact_for(session, email)
    member = session.scalar(
        select(AccountMember).where(AccountMember.account_id == account.id, AccountMember.contact_id == contact.id)
    )
    if member is None:
        member = AccountMember(account_id=account.id, contact_id=contact.id)
        session.add(member)
        session.flush()
    return member


def remove_member(session: Session, account_name: str, email: str) -> bool:
    """End an explicit membership; False when there was none (domain members stay members)."""
    account = _account(session, account_name)
    contact_id = select(Contact.id).where(Contact.email == email.strip().lower()).scalar_subquery()
    result = session.execute(
        delete(AccountMember)
        .where(AccountMember.account_id == account.id, AccountMember.contact_id == contact_id)
        .returning(AccountMember.id)
    )
    return result.first() is not None


def list_accounts(session: Session) -> list[AccountSummary]:
    accounts = session.scalars(select(Account).order_by(Account.name)).all()
    summaries = []
    for account in accounts:
        domains = session.scalars(
            select(AccountDomain.domain).where(AccountDomain.account_id == account.id).order_by(AccountDomain.domain)
        )
        members = session.scalars(
            select(Contact.email)
            .join(AccountMember, AccountMember.contact_id == Contact.id)
            .where(AccountMember.account_id == account.id)
            .order_by(Contact.email)
        )
        summaries.append(AccountSummary(account.name, account.share_tickets, tuple(domains), tuple(members)))
    return summaries


class SharingAccount(NamedTuple):
    """An account that shares tickets among its members, as the portal names it."""

    id: int
    public_id: str
    name: str


def domain_of(address: ColumnElement[str]) -> ColumnElement[str]:
    """The domain of an address in SQL (SQLite and PostgreSQL): what follows its last "@"."""
    # rtrim(address, <every character of it but "@">) leaves the address up to its last "@".
    up_to_at = func.rtrim(address, func.replace(address, "@", ""))
    return func.substr(address, func.length(up_to_at) + 1)


_BY_MEMBERSHIP = aliased(Account, name="member_account")
_BY_DOMAIN = aliased(Account, name="domain_account")
_ACCOUNT_COLUMNS = (
    _BY_MEMBERSHIP.id, _BY_MEMBERSHIP.public_id, _BY_MEMBERSHIP.name,
    _BY_DOMAIN.id, _BY_DOMAIN.public_id, _BY_DOMAIN.name,
)  # fmt: skip


def with_sharing_accounts(statement: Select[Any]) -> Select[Any]:
    """`statement`, which selects from `contact`, with the contact's sharing accounts as last columns.

    Outer joins driven by the contact's row (its memberships, its address's domain), so
    every probe is an index lookup on SQLite and PostgreSQL alike; an IN-subquery in the
    join condition made PostgreSQL test every account. A contact in several accounts
    gives a row for each membership; `sharing_accounts_in` reads the accounts back.
    """
    return (
        statement.add_columns(*_ACCOUNT_COLUMNS)
        .outerjoin(AccountMember, AccountMember.contact_id == Contact.id)
        .outerjoin(_BY_MEMBERSHIP, and_(_BY_MEMBERSHIP.id == AccountMember.account_id, _BY_MEMBERSHIP.share_tickets))
        .outerjoin(AccountDomain, AccountDomain.domain == domain_of(Contact.email))
        .outerjoin(_BY_DOMAIN, and_(_BY_DOMAIN.id == AccountDomain.account_id, _BY_DOMAIN.share_tickets))
    )


def sharing_accounts_in(rows: Iterable[Sequence[Any]]) -> list[SharingAccount]:
    """The accounts in the last columns of `with_sharing_accounts` rows, each once, by name."""
    found = {
        account[0]: SharingAccount(*account)
        for row in rows
        for account in (row[-6:-3], row[-3:])
        if account[0] is not None
    }
    return sorted(found.values(), key=lambda account: (account.name, account.id))


_SHARING = with_sharing_accounts(select().select_from(Contact).where(Contact.id == bindparam("contact_id")))


def sharing_accounts(connection: Connection, contact_id: int) -> list[SharingAccount]:
    """The accounts the contact belongs to that share tickets among their members."""
    return sharing_accounts_in(connection.execute(_SHARING, {"contact_id": contact_id}))


def shared_requesters(account_ids: Iterable[int] | BindParameter[Any]) -> Select[tuple[int]]:
    """Ids of every contact in these accounts, by membership or by attached domain."""
    explicit = select(AccountMember.contact_id).where(AccountMember.account_id.in_(account_ids))
    by_domain = (
        select(Contact.id)
        .join(AccountDomain, Contact.email.like(literal("%@") + AccountDomain.domain))
        .where(AccountDomain.account_id.in_(account_ids))
    )
    return select(union(explicit, by_domain).subquery().c[0])


def account_sharing_with(session: Session, viewer: Contact, requester_id: int) -> SharingAccount | None:
    """The sharing account through which `viewer` may see tickets of `requester_id`, if any."""

    def both(sync: Session) -> tuple[list[SharingAccount], list[SharingAccount]]:
        connection = sync.connection()
        return sharing_accounts(connection, viewer.id), sharing_accounts(connection, requester_id)

    accounts, theirs = both(session)
    shared = {account.id for account in theirs}  # an account that does not share lets nobody in anyway
    return next((account for account in accounts if account.id in shared), None)
