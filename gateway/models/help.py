"""The help center, company accounts and read markers.

An Article lives in an ArticleCategory and keeps its Markdown source, the sanitized HTML
rendered from it and a plain-text copy that full-text search reads. Search needs objects
the ORM does not describe: on SQLite an FTS5 table (`article_search`, external content,
kept in step by triggers), on PostgreSQL a GIN index over a weighted `tsvector`
expression. `search_schema(dialect)` lists that DDL; it runs after `article` is created by
`create_all` (a DDL event below), the Alembic migration runs the same statements, and
`include_name` keeps these objects out of Alembic's schema comparisons.

An Account groups contacts by explicit AccountMember rows or by AccountDomain (an email
domain an operator attached); `share_tickets` says whether members see each other's
tickets. A TicketRead row remembers when a contact last looked at a ticket, for the
"unread" marker of the ticket list.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import DDL, Table

from gateway.models.base import Base, BigId, UTCDateTime, created_column, public_id_column, utcnow

SEARCH_CONFIG = "english"
TSVECTOR = (
    f"setweight(to_tsvector('{SEARCH_CONFIG}', coalesce(title, '')), 'A') || "
    f"setweight(to_tsvector('{SEARCH_CONFIG}', coalesce(body_text, '')), 'B')"
)
SEARCH_TABLE = "article_search"
SEARCH_INDEX = "ix_article_search"

_SQLITE_SEARCH = [
    f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5(title, body_text, content='article', "
    "content_rowid='id', tokenize='porter unicode61')",
    f"CREATE TRIGGER {SEARCH_TABLE}_insert AFTER INSERT ON article BEGIN "
    f"INSERT INTO {SEARCH_TABLE}(rowid, title, body_text) VALUES (new.id, new.title, new.body_text); END",
    f"CREATE TRIGGER {SEARCH_TABLE}_delete AFTER DELETE ON article BEGIN "
    f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, title, body_text) "
    "VALUES ('delete', old.id, old.title, old.body_text); END",
    f"CREATE TRIGGER {SEARCH_TABLE}_update AFTER UPDATE ON article BEGIN "
    f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, title, body_text) "
    "VALUES ('delete', old.id, old.title, old.body_text); "
    f"INSERT INTO {SEARCH_TABLE}(rowid, title, body_text) VALUES (new.id, new.title, new.body_text); END",
]
_POSTGRESQL_SEARCH = [f"CREATE INDEX {SEARCH_INDEX} ON article USING GIN (({TSVECTOR}))"]


def search_schema(dialect: str) -> list[str]:
    """The full-text search DDL for `dialect` ("sqlite" or "postgresql"), run after `article` exists."""
    return {"sqlite": _SQLITE_SEARCH, "postgresql": _POSTGRESQL_SEARCH}.get(dialect, [])


def include_name(name: str | None, type_: str, parent_names: object = None) -> bool:
    """Alembic's `include_name` hook: leave the search DDL out of schema comparisons."""
    if name is None:
        return True
    return not ((type_ == "table" and name.startswith(SEARCH_TABLE)) or (type_ == "index" and name == SEARCH_INDEX))


class ArticleCategory(Base):
    __tablename__ = "article_category"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)


class Article(Base):
    """One help-center article; `body_html` is rendered and sanitized when it is saved."""

    __tablename__ = "article"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("article_category.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(String(400), default="")
    body_markdown: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Account(Base):
    """A customer company; `share_tickets` lets its members see each other's tickets."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = public_id_column()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    share_tickets: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = created_column()


class AccountMember(Base):
    __tablename__ = "account_member"
    __table_args__ = (UniqueConstraint("account_id", "contact_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    created_at: Mapped[datetime] = created_column()


class AccountDomain(Base):
    """An email domain an operator attached to an account; never a free-mail provider."""

    __tablename__ = "account_domain"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)
    created_at: Mapped[datetime] = created_column()


class TicketRead(Base):
    """When a contact last opened a ticket in the portal."""

    __tablename__ = "ticket_read"
    __table_args__ = (UniqueConstraint("contact_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def _create_search_schema(table: Table, connection: Connection, **_: object) -> None:
    for statement in search_schema(connection.dialect.name):
        connection.execute(DDL(statement))


def _drop_search_schema(table: Table, connection: Connection, **_: object) -> None:
    if connection.dialect.name == "sqlite":
        connection.execute(DDL(f"DROP TABLE IF EXISTS {SEARCH_TABLE}"))


event.listen(Article.__table__, "after_create", _create_search_schema)
event.listen(Article.__table__, "before_drop", _drop_search_schema)
