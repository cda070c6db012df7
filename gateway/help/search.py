"""Full-text search over help-center articles: SQLite FTS5 or a PostgreSQL tsvector index.

The search schema itself is created with the tables (see `gateway.models.help`). A query
is reduced to its words, so nothing a visitor types reaches either query language as
syntax; every word also matches as a prefix ("print" finds "printer"). `search_articles`
first asks for articles holding every word and, when there are none, for articles holding
any of them, best match first. `suggest_articles` feeds ticket subjects to the "any word"
search for the "articles that may help" boxes and falls back to the newest articles. Both
are reads for `Database.read` (they take a synchronous Connection) and answer with the
columns a result list shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import Connection, Row, bindparam, select, text

from gateway.models import Article
from gateway.models.help import SEARCH_CONFIG, SEARCH_TABLE, TSVECTOR

MAX_WORDS = 12
_WORD = re.compile(r"[^\W_]{2,}")
_SQLITE = text(
    f"SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH :query "
    f"ORDER BY bm25({SEARCH_TABLE}, 5.0, 1.0) LIMIT :limit"
)
_POSTGRESQL = text(
    f"SELECT id FROM article WHERE ({TSVECTOR}) @@ to_tsquery('{SEARCH_CONFIG}', :query) "
    f"ORDER BY ts_rank(({TSVECTOR}), to_tsquery('{SEARCH_CONFIG}', :query)) DESC, id LIMIT :limit"
)


ArticleLink = Row[tuple[int, str, str, str]]  # id, slug, title, summary: what a result list shows
_LINK_COLUMNS = (Article.id, Article.slug, Article.title, Article.summary)
_PUBLISHED = select(*_LINK_COLUMNS).where(Article.id.in_(bindparam("ids", expanding=True)), Article.published)
_NEWEST = (
    select(*_LINK_COLUMNS)
    .where(Article.published.is_(True))
    .order_by(Article.updated_at.desc(), Article.id)
    .limit(bindparam("limit"))
)


def search_words(query: str) -> list[str]:
    """The distinct words of `query`, lower-case, at most MAX_WORDS."""
    return list(dict.fromkeys(word.lower() for word in _WORD.findall(query)))[:MAX_WORDS]


def _expression(dialect: str, words: list[str], *, every: bool) -> str:
    if dialect == "postgresql":
        return (" & " if every else " | ").join(f"{word}:*" for word in words)
    return (" " if every else " OR ").join(f'"{word}"*' for word in words)


def _matching_ids(connection: Connection, words: list[str], *, every: bool, limit: int) -> list[int]:
    dialect = connection.dialect.name
    statement = _POSTGRESQL if dialect == "postgresql" else _SQLITE
    parameters = {"query": _expression(dialect, words, every=every), "limit": limit * 2}
    return list(connection.scalars(statement, parameters))


def _published(connection: Connection, ids: list[int], limit: int) -> list[ArticleLink]:
    if not ids:
        return []
    found = {row.id: row for row in connection.execute(_PUBLISHED, {"ids": ids})}
    return [found[i] for i in ids if i in found][:limit]


def search_articles(connection: Connection, query: str, *, limit: int = 20, every: bool = True) -> list[ArticleLink]:
    """Published articles matching `query`, best first (every word, else any word when `every`)."""
    words = search_words(query)
    if not words:
        return []
    found = _published(connection, _matching_ids(connection, words, every=every, limit=limit), limit)
    if not found and every and len(words) > 1:
        found = _published(connection, _matching_ids(connection, words, every=False, limit=limit), limit)
    return found


def suggest_articles(connection: Connection, texts: Iterable[str], *, limit: int = 5) -> list[ArticleLink]:
    """Articles that may help with tickets about `texts` (subjects), or the newest ones."""
    words = search_words(" ".join(texts))
    found = search_articles(connection, " ".join(words), limit=limit, every=False) if words else []
    return found or list(connection.execute(_NEWEST, {"limit": limit}))
