"""The help center: categories, articles and search, open to everyone, signed in or not.

`/help` lists the categories and the newest articles, `/help/categories/{slug}` one
category, `/help/articles/{slug}` one article (its HTML was sanitized when it was saved),
`/help/search?q=` full-text results. `/help/suggest?q=` answers the same search as JSON
for the new-request page's script, which suggests articles as the subject is typed.
"""

from __future__ import annotations

from functools import partial

from aiohttp import web
from sqlalchemy.orm import Session

from gateway.help.articles import category_page, list_categories, published_article, recent_articles
from gateway.help.search import search_articles
from gateway.models import Article, ArticleCategory
from gateway.storage.database import orm
from portal import keys
from portal.templating import render

MAX_QUERY = 200
SUGGESTIONS = 5


def _query(request: web.Request) -> str:
    return " ".join(request.query.get("q", "").split())[:MAX_QUERY]


async def help_index(request: web.Request) -> web.Response:
    categories, recent = await request.app[keys.DB].read(
        orm(lambda session: (list_categories(session), recent_articles(session, 6)))
    )
    return await render(request, "help_index.html", {"categories": categories, "recent": recent, "query": ""})


async def help_category(request: web.Request) -> web.Response:
    found = await request.app[keys.DB].read(orm(partial(category_page, slug=request.match_info["slug"])))
    if found is None:
        raise web.HTTPNotFound()
    category, articles = found
    return await render(request, "help_category.html", {"category": category, "articles": articles, "query": ""})


async def help_article(request: web.Request) -> web.Response:

    def read(session: Session) -> tuple[Article, ArticleCategory, list[Article]]:
        found = published_article(session, request.match_info["slug"])
        if found is None:
            raise web.HTTPNotFound()
        article, category = found
        found_category = category_page(session, category.slug)
        return article, category, found_category[1] if found_category else []

    article, category, siblings = await request.app[keys.DB].read(orm(read))
    related = [a for a in siblings if a.id != article.id][:5]
    context = {"article": article, "category": category, "related": related, "query": ""}
    return await render(request, "help_article.html", context)


async def help_search(request: web.Request) -> web.Response:
    query = _query(request)
    results = await request.app[keys.DB].read(partial(search_articles, query=query)) if query else []
    return await render(request, "help_search.html", {"query": query, "results": results})


async def help_suggest(request: web.Request) -> web.Response:
    """JSON `{"articles": [{"title", "summary", "url"}]}` for `q` (at most five)."""
    query = _query(request)
    search = partial(search_articles, query=query, limit=SUGGESTIONS, every=False)
    found = await request.app[keys.DB].read(search) if query else []
    articles = [
        {"title": a.title, "summary": a.summary, "url": str(request.app.router["help_article"].url_for(slug=a.slug))}
        for a in found
    ]
    return web.json_response({"articles": articles})
