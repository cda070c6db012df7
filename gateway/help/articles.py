"""Help-center articles: Markdown in, sanitized HTML out, imported from files, read by the portal.

An article file is Markdown with YAML front matter (`title`, `category`, optional `slug`,
`summary`, `position`, `published`); `wicket articles import DIR` loads every `*.md` under
a directory with `import_articles`, creating or updating by slug, and creating categories
by name. `render_markdown` uses markdown-it-py (CommonMark plus tables, raw HTML escaped)
and then nh3, so even an operator's article cannot carry a script. The portal reads
articles with `list_categories`, `category_page`, `published_article` and `recent_articles`;
searching is `gateway.help.search`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nh3
import yaml
from markdown_it import MarkdownIt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.mail.html_text import html_to_text
from gateway.models import Article, ArticleCategory, utcnow

SUMMARY_LENGTH = 200
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable("table")
_ARTICLE_TAGS = set(nh3.ALLOWED_TAGS) | {"hr"}
_ARTICLE_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"align"},
    "td": {"align"},
    "ol": {"start"},
    "code": {"class"},
}


class ArticleError(ValueError):
    """An article file that cannot be imported as written."""


@dataclass(frozen=True, slots=True)
class ArticleSource:
    """One article file after reading its front matter."""

    slug: str
    title: str
    category: str
    body_markdown: str
    summary: str = ""
    position: int = 0
    published: bool = True


@dataclass(slots=True)
class ImportSummary:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def slugify(text: str) -> str:
    return _NOT_SLUG.sub("-", text.lower()).strip("-")[:100] or "article"


def render_markdown(markdown: str) -> str:
    """Markdown as sanitized HTML (no raw HTML, no scripts, only http/https/mailto/relative links)."""
    return nh3.clean(
        _MARKDOWN.render(markdown),
        tags=_ARTICLE_TAGS,
        attributes={tag: set(names) for tag, names in _ARTICLE_ATTRIBUTES.items()},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def summary_of(text: str) -> str:
    first = next((block for block in text.split("\n\n") if block.strip()), "")
    words = " ".join(first.split())
    return words if len(words) <= SUMMARY_LENGTH else words[: SUMMARY_LENGTH - 1].rsplit(" ", 1)[0] + "…"


def parse_article(text: str, default_slug: str) -> ArticleSource:
    """An article file's front matter and body; ArticleError names what is missing."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise ArticleError("no front matter: start the file with ---, title: …, category: …, ---")
    try:
        meta: Any = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as error:
        raise ArticleError(f"front matter is not valid YAML: {error}") from None
    if not isinstance(meta, dict):
        raise ArticleError("front matter must be a list of `key: value` lines")
    title, category = str(meta.get("title") or "").strip(), str(meta.get("category") or "").strip()
    if not title or not category:
        raise ArticleError("front matter needs both title and category")
    slug = str(meta.get("slug") or slugify(default_slug))
    if not _SLUG.match(slug) or len(slug) > 100:
        raise ArticleError(f"slug {slug!r} may only hold lower-case letters, digits and single dashes")
    try:
        position = int(meta.get("position") or 0)
    except (TypeError, ValueError):
        raise ArticleError("position must be a whole number") from None
    return ArticleSource(
        slug=slug,
        title=title[:300],
        category=category[:200],
        body_markdown=text[match.end() :].strip() + "\n",
        summary=" ".join(str(meta.get("summary") or "").split())[:400],
        position=position,
        published=bool(meta.get("published", True)),
    )


def category_named(session: Session, title: str) -> ArticleCategory:
    slug = slugify(title)
    category = session.scalar(select(ArticleCategory).where(ArticleCategory.slug == slug))
    if category is None:
        position = session.scalar(select(func.count(ArticleCategory.id)))
        category = ArticleCategory(slug=slug, title=title, description="", position=position or 0)
        session.add(category)
        session.flush()
    return category


def save_article(session: Session, source: ArticleSource) -> tuple[Article, str]:
    """Create or update the article with `source.slug`; returns it and "created"/"updated"/"unchanged"."""
    category = category_named(session, source.category)
    html = render_markdown(source.body_markdown)
    text = html_to_text(html)
    values = {
        "category_id": category.id,
        "title": source.title,
        "summary": source.summary or summary_of(text),
        "body_markdown": source.body_markdown,
        "body_html": html,
        "body_text": text,
        "published": source.published,
        "position": source.position,
    }
    article = session.scalar(select(Article).where(Article.slug == source.slug))
    if article is None:
        article = Article(slug=source.slug, created_at=utcnow(), updated_at=utcnow(), **values)
        session.add(article)
        outcome = "created"
    elif any(getattr(article, name) != value for name, value in values.items()):
        for name, value in values.items():
            setattr(article, name, value)
        article.updated_at = utcnow()
        outcome = "updated"
    else:
        outcome = "unchanged"
    session.flush()
    return article, outcome


def import_articles(session: Session, directory: Path) -> ImportSummary:
    """Load every `*.md` file under `directory` (ArticleError names the file that failed)."""
    if not directory.is_dir():
        raise ArticleError(f"{directory} is not a directory")
    summary = ImportSummary()
    for path in sorted(directory.rglob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        try:
            source = parse_article(path.read_text(encoding="utf-8"), path.stem)
        except (ArticleError, UnicodeDecodeError) as error:
            raise ArticleError(f"{path}: {error}") from None
        _, outcome = save_article(session, source)
        getattr(summary, outcome).append(source.slug)
    return summary


def list_categories(session: Session) -> list[tuple[ArticleCategory, int]]:
    """Categories that have published articles, with how many, in their order."""
    count = func.count(Article.id)
    rows = session.execute(
        select(ArticleCategory, count)
        .join(Article, Article.category_id == ArticleCategory.id)
        .where(Article.published.is_(True))
        .group_by(ArticleCategory.id)
        .order_by(ArticleCategory.position, ArticleCategory.title)
    )
    return [(category, number) for category, number in rows.all()]


def category_page(session: Session, slug: str) -> tuple[ArticleCategory, list[Article]] | None:
    category = session.scalar(select(ArticleCategory).where(ArticleCategory.slug == slug))
    if category is None:
        return None
    articles = session.scalars(
        select(Article)
        .where(Article.category_id == category.id, Article.published.is_(True))
        .order_by(Article.position, Article.title)
    )
    return category, list(articles.all())


def published_article(session: Session, slug: str) -> tuple[Article, ArticleCategory] | None:
    row = (
        session.execute(
            select(Article, ArticleCategory)
            .join(ArticleCategory, ArticleCategory.id == Article.category_id)
            .where(Article.slug == slug, Article.published.is_(True))
        )
    ).first()
    return None if row is None else (row[0], row[1])


def recent_articles(session: Session, limit: int = 5) -> list[Article]:
    rows = session.scalars(
        select(Article).where(Article.published.is_(True)).order_by(Article.updated_at.desc(), Article.id).limit(limit)
    )
    return list(rows.all())
