"""The brand a page is drawn in: name, colours, logo and the support address.

Templates receive it as `brand`. Today the brand comes from the default mailbox (see
`gateway.signin_mail.default_mailbox`) and the colour settings; it is cached per
application for a short while so ordinary pages cost no extra query, and falls back to a
plain brand when the database cannot be reached, so error pages still render.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web

from gateway.settings import Settings
from gateway.signin_mail import default_mailbox
from portal import keys

CACHE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Brand:
    name: str
    primary_color: str
    accent_color: str
    logo_url: str | None = None
    support_email: str | None = None

    @property
    def initial(self) -> str:
        return (self.name[:1] or "?").upper()


@dataclass(slots=True)
class BrandCache:
    brand: Brand | None = None
    loaded_at: float = field(default=0.0)


def fallback_brand(settings: Settings) -> Brand:
    return Brand("Support", settings.brand_primary_color, settings.brand_accent_color, settings.brand_logo_url)


async def load_brand(request: web.Request) -> Brand:
    """The brand for `request`, from the cache or the database."""
    settings = request.app[keys.SETTINGS]
    cache = request.app[keys.BRANDS]
    if cache.brand is not None and time.monotonic() - cache.loaded_at < CACHE_SECONDS:
        return cache.brand
    async with request.app[keys.DB].sessions() as session:
        mailbox = await default_mailbox(session, request.host)
    if mailbox is None:
        brand = fallback_brand(settings)
    else:
        colours = (settings.brand_primary_color, settings.brand_accent_color)
        brand = Brand(mailbox.name, *colours, settings.brand_logo_url, mailbox.address)
    cache.brand, cache.loaded_at = brand, time.monotonic()
    return brand


async def brand_for(request: web.Request) -> Brand:
    """Like `load_brand`, but never fails: a plain brand when the database is unreachable."""
    try:
        return await load_brand(request)
    except Exception:  # noqa: BLE001 - error pages must render whatever the database does
        cached = request.app[keys.BRANDS].brand
        return cached or fallback_brand(request.app[keys.SETTINGS])


async def brand_css(request: web.Request) -> web.Response:
    """`/brand.css`: the brand colours as CSS custom properties (no inline styles needed)."""
    brand = await brand_for(request)
    css = f":root {{ --brand: {brand.primary_color}; --accent: {brand.accent_color}; }}\n"
    return web.Response(text=css, content_type="text/css", headers={"Cache-Control": "public, max-age=300"})
