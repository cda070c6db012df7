"""Full-text search over help-center articles: SQLite FTS5 or a PostgreSQL tsvector index.

The search schema itself is created with the tables (see `gateway.models.help`). A query
is reduced to its words, so nothing a visitor types reaches either query language as
syntax; every word also matches as a prefix ("print" finds "printer"). `search_articles`
first asks for articles holding every word and, when there are none, for articles holding
any of them, best match first. `suggest_articles` feeds ticket subjects to the "any word"
search for the "articles that may help" boxes and falls back to the newest articles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.help_center import recent_articles
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


def search_words(query: str) -> list[str]:
    """The distinct words of `query`, lower-case, at most MAX_WORDS."""
    return list(dict.fromkeys(word.lower() for word in _WORD.findall(query)))[:MAX_WORDS]


def _expression(dialect: str, words: list[str], *, every: bool) -> str:
    if dialect == "postgresql":
        return (" & " if every else " | ").join(f"{word}:*" for word in words)
    return (" " if every else " OR ").join(f'"{word}"*' for word in words)


async def _matching_ids(session: AsyncSession, words: list[str], *, every: bool, limit: int) -> list[int]:
    dialect = session.get_bind().dialect.name
    statement = _POSTGRESQL if dialect == "postgresql" else _SQLITE
    parameters = {"query": _expression(dialect, words, every=every), "limit": limit * 2}
    return list((await session.scalars(statement, parameters)).all())


async def _published(session: AsyncSession, ids: list[int], limit: int) -> list[Article]:
    if not ids:
        return []
    found = {a.id: a for a in await session.scalars(select(Article).where(Article.id.in_(ids), Article.published))}
    return [found[i] for i in ids if i in found][:limit]


async def search_articles(session: AsyncSession, query: str, *, limit: int = 20, every: bool = True) -> list[Article]:
    """Published articles matching `query`, best first (every word, else any word when `every`)."""
    words = search_words(query)
    if not words:
        return []
    found = await _published(session, await _matching_ids(session, words, every=every, limit=limit), limit)
    if not found and every and len(words) > 1:
        found = await _published(session, await _matching_ids(session, words, every=False, limit=limit), limit)
    return found


async def suggest_articles(session: AsyncSession, texts: Iterable[str], *, limit: int = 5) -> list[Article]:
    """Articles that may help with tickets about `texts` (subjects), or the newest ones."""
    words = search_words(" ".join(texts))
    found = await search_articles(session, " ".join(words), limit=limit, every=False) if words else []
    return found or await recent_articles(session, limit)
