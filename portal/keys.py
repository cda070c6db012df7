"""Typed keys for application and request state, so every lookup is checked by mypy.

Application keys hold what `create_app` and its cleanup context set up, and what the
composition root hands in (the node's one `Processor`); request keys hold
what one request learns lazily (its session, its CSRF seed) and the cookies it must send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.i18n import Translator
from gateway.inbound.processor import Processor
from gateway.settings import Settings
from gateway.storage.database import Database

if TYPE_CHECKING:
    from portal.branding import BrandCache
    from portal.csrf import CsrfState
    from portal.sessions import SessionState
    from portal.suggestions import SuggestionCache

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
BRANDS: web.AppKey[BrandCache] = web.AppKey("brands")
SUGGESTIONS: web.AppKey[SuggestionCache] = web.AppKey("suggestions")
# The node's one Processor, handed in by the composition root (docs/architecture.md, "The portal").
PROCESSOR = web.AppKey("processor", Processor)

SESSION: web.RequestKey[SessionState] = web.RequestKey("session")
CSRF: web.RequestKey[CsrfState] = web.RequestKey("csrf")
TRANSLATOR: web.RequestKey[Translator] = web.RequestKey("translator")
