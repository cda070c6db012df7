"""The brand a page is drawn in: name, colours, logo, support address and footer links.

Templates receive it as `brand`. The Host header picks the mailbox whose custom domain it
is (any other host gets the default, first, mailbox: see `gateway.directory.branding`); empty brand
columns fall back to the mailbox name and the colour settings. Brands are cached per host
for a short while so ordinary pages cost no extra query, and a plain brand is used when
the database cannot be reached, so error pages still render. `/brand.css` turns the
colours into CSS custom properties, so no page needs an inline style.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from aiohttp import web

from gateway.directory.branding import COLOUR, FooterLink, footer_links, hostname, mailbox_for_host
from gateway.models import Mailbox
from gateway.settings import Settings
from gateway.storage.database import orm
from portal import keys

CACHE_SECONDS = 30.0
MAX_CACHED_HOSTS = 64


@dataclass(frozen=True, slots=True)
class Brand:
    name: str
    primary_color: str
    accent_color: str
    logo_url: str | None = None
    support_email: str | None = None
    footer_links: tuple[FooterLink, ...] = ()
    mailbox_id: int | None = None
    language: str | None = None  # the mailbox's default language

    @property
    def initial(self) -> str:
        return (self.name[:1] or "?").upper()


@dataclass(slots=True)
class BrandCache:
    """Brands by host name, each with the time it was loaded; `brand` is the last one seen."""

    brand: Brand | None = None
    by_host: dict[str, tuple[Brand, float]] = field(default_factory=dict)

    def get(self, host: str) -> Brand | None:
        found = self.by_host.get(host)
        if found is None or time.monotonic() - found[1] >= CACHE_SECONDS:
            return None
        return found[0]

    def put(self, host: str, brand: Brand) -> None:
        if len(self.by_host) >= MAX_CACHED_HOSTS:
            self.by_host.clear()
        self.by_host[host] = (brand, time.monotonic())
        self.brand = brand


def fallback_brand(settings: Settings) -> Brand:
    return Brand("Support", settings.brand_primary_color, settings.brand_accent_color, settings.brand_logo_url)


def brand_of(mailbox: Mailbox, settings: Settings) -> Brand:
    """A mailbox's brand, with the settings filling what the mailbox leaves empty."""
    primary = mailbox.primary_color if mailbox.primary_color and COLOUR.match(mailbox.primary_color) else None
    accent = mailbox.accent_color if mailbox.accent_color and COLOUR.match(mailbox.accent_color) else None
    return Brand(
        name=mailbox.display_name,
        primary_color=primary or settings.brand_primary_color,
        accent_color=accent or settings.brand_accent_color,
        logo_url=mailbox.logo_url or settings.brand_logo_url,
        support_email=mailbox.address,
        footer_links=tuple(footer_links(mailbox)),
        mailbox_id=mailbox.id,
        language=mailbox.language,
    )


async def load_brand(request: web.Request) -> Brand:
    """The brand for `request`'s host, from the cache or the database."""
    settings = request.app[keys.SETTINGS]
    cache = request.app[keys.BRANDS]
    host = hostname(request.host) or ""
    cached = cache.get(host)
    if cached is not None:
        return cached
    mailbox = await request.app[keys.DB].read(orm(partial(mailbox_for_host, host=host)))
    brand = fallback_brand(settings) if mailbox is None else brand_of(mailbox, settings)
    cache.put(host, brand)
    return brand


async def brand_for(request: web.Request) -> Brand:
    """Like `load_brand`, but never fails: a plain brand when the database is unreachable."""
    try:
        return await load_brand(request)
    except Exception:  # noqa: BLE001 - error pages must render whatever the database does
        cache = request.app[keys.BRANDS]
        stale = cache.by_host.get(hostname(request.host) or "")
        return stale[0] if stale else cache.brand or fallback_brand(request.app[keys.SETTINGS])


async def brand_css(request: web.Request) -> web.Response:
    """`/brand.css`: the brand colours as CSS custom properties (no inline styles needed)."""
    brand = await brand_for(request)
    css = f":root {{ --brand: {brand.primary_color}; --accent: {brand.accent_color}; }}\n"
    return web.Response(text=css, content_type="text/css", headers={"Cache-Control": "public, max-age=300"})


FAVICON = Path(__file__).resolve().parent / "static" / "favicon.svg"


async def favicon(request: web.Request) -> web.Response:
    """`/favicon.ico`: the portal's icon, for clients that ask there instead of reading the page."""
    return web.Response(
        body=FAVICON.read_bytes(), content_type="image/svg+xml", headers={"Cache-Control": "private, max-age=86400"}
    )
