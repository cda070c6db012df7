"""Articles that may help, remembered for a short while.

The ticket list shows help-center articles for the words of the contact's open tickets'
subjects (`gateway.help.search.suggest_articles`). The answer depends only on those
subjects and on the published articles, which change rarely, so it is kept per list of
subjects for CACHE_SECONDS: most list views then cost no search at all (not even taking
the subjects apart into words), and an article published or withdrawn shows up in the
boxes within that time (the article page itself is always current). The articles are
public, so one contact's cached answer may serve another with the same subjects.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial

from aiohttp import web

from gateway.help.search import ArticleLink, suggest_articles
from portal import keys

CACHE_SECONDS = 30.0
MAX_CACHED_QUERIES = 256


@dataclass(slots=True)
class SuggestionCache:
    """Suggested articles by the subjects they were found for, each with the time it was found."""

    by_subjects: dict[tuple[str, ...], tuple[list[ArticleLink], float]] = field(default_factory=dict)

    def get(self, subjects: tuple[str, ...]) -> list[ArticleLink] | None:
        found = self.by_subjects.get(subjects)
        if found is None or time.monotonic() - found[1] >= CACHE_SECONDS:
            return None
        return found[0]

    def put(self, subjects: tuple[str, ...], articles: list[ArticleLink]) -> None:
        if len(self.by_subjects) >= MAX_CACHED_QUERIES:
            self.by_subjects.clear()
        self.by_subjects[subjects] = (articles, time.monotonic())


async def suggestions_for(request: web.Request, subjects: Iterable[str]) -> list[ArticleLink]:
    """Articles that may help with tickets about `subjects`."""
    asked = tuple(subjects)
    cache = request.app[keys.SUGGESTIONS]
    articles = cache.get(asked)
    if articles is None:
        articles = await request.app[keys.DB].read(partial(suggest_articles, texts=asked))
        cache.put(asked, articles)
    return articles
