"""Per-mailbox brands: which mailbox a portal host belongs to, and changing a brand.

A mailbox's brand is its display name, logo, two colours, footer links and the custom
domain its portal is reached on. `mailbox_for_host` maps a request's Host header to the
mailbox whose `custom_domain` it is, and any other host to the first mailbox (the default
brand); `portal_url` is the other direction, the address mail of a mailbox links to, so a
customer's link opens the portal in the brand they wrote to. `set_brand` validates and
stores what an operator gives (`wicket mailbox brand`), so the portal can put colours
into CSS and links into pages without checking them again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.directory.accounts import AccountError, normalize_domain
from gateway.directory.mailboxes import normalize_address
from gateway.i18n import LANGUAGES, known_language
from gateway.models import Mailbox
from gateway.settings import Settings

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_FOOTER_LINKS = 8


class BrandError(ValueError):
    """A brand setting that cannot be used as given."""


@dataclass(frozen=True, slots=True)
class FooterLink:
    label: str
    url: str


def hostname(host: str | None) -> str | None:
    """The lower-case host name of a Host header value, without the port."""
    if not host:
        return None
    name = host.strip().lower()
    if name.startswith("["):
        return name[1:].partition("]")[0] or None
    return name.rpartition(":")[0] if name.count(":") == 1 else name


def safe_link(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme in ("https", "http") and bool(parts.netloc) or parts.scheme == "mailto"


def footer_links(mailbox: Mailbox) -> list[FooterLink]:
    """The mailbox's footer links that are well-formed (http, https or mailto)."""
    links = []
    for item in (mailbox.footer_links or [])[:MAX_FOOTER_LINKS]:
        label, url = str(item.get("label") or "").strip(), str(item.get("url") or "").strip()
        if label and safe_link(url):
            links.append(FooterLink(label[:80], url))
    return links


def portal_url(settings: Settings, mailbox: Mailbox | None) -> str:
    """The portal's base URL in mail of `mailbox`: `public_url` with the host swapped for the
    mailbox's custom domain when it has one (scheme, port and path kept), else `public_url`."""
    if mailbox is None or not mailbox.custom_domain:
        return settings.public_url
    parts = urlsplit(settings.public_url)
    host = mailbox.custom_domain if parts.port is None else f"{mailbox.custom_domain}:{parts.port}"
    return parts._replace(netloc=host).geturl()


def mailbox_for_host(session: Session, host: str | None) -> Mailbox | None:
    """The mailbox whose custom domain is `host`, else the first mailbox (None when there is none)."""
    name = hostname(host)
    if name:
        mailbox = session.scalar(select(Mailbox).where(Mailbox.custom_domain == name))
        if mailbox is not None:
            return mailbox
    return session.scalar(select(Mailbox).order_by(Mailbox.id).limit(1))


def _colour(value: str) -> str:
    if not COLOUR.match(value.strip()):
        raise BrandError(f"{value!r} is not a colour like #2454d6")
    return value.strip().lower()


def _domain(value: str) -> str:
    try:
        return normalize_domain(value)
    except AccountError as error:
        raise BrandError(str(error)) from None


def _footer(links: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    checked = []
    for label, url in links:
        if not label.strip() or not safe_link(url):
            raise BrandError(f"footer link {label!r} needs a label and an http(s) or mailto address")
        checked.append({"label": label.strip()[:80], "url": url.strip()})
    if len(checked) > MAX_FOOTER_LINKS:
        raise BrandError(f"at most {MAX_FOOTER_LINKS} footer links")
    return checked


def set_brand(
    session: Session,
    address: str,
    *,
    name: str | None = None,
    logo_url: str | None = None,
    primary_color: str | None = None,
    accent_color: str | None = None,
    custom_domain: str | None = None,
    links: Iterable[tuple[str, str]] | None = None,
    language: str | None = None,
) -> Mailbox:
    """Change the brand of the mailbox at `address`; arguments left None stay as they are."""
    mailbox = session.scalar(select(Mailbox).where(Mailbox.address == normalize_address(address)))
    if mailbox is None:
        raise BrandError(f"no mailbox {address!r}")
    if name is not None:
        mailbox.brand_name = " ".join(name.split())[:200] or None
    if logo_url is not None:
        if logo_url and urlsplit(logo_url).scheme != "https" and not logo_url.startswith("/static/"):
            raise BrandError("a logo must be an https:// address (or a file under /static/)")
        mailbox.logo_url = logo_url or None
    if primary_color is not None:
        mailbox.primary_color = _colour(primary_color)
    if accent_color is not None:
        mailbox.accent_color = _colour(accent_color)
    if custom_domain is not None:
        mailbox.custom_domain = _domain(custom_domain) if custom_domain else None
    if links is not None:
        mailbox.footer_links = _footer(links)
    if language is not None:
        if known_language(language) != language:
            raise BrandError(f"Wicket speaks {', '.join(LANGUAGES)}, not {language!r}")
        mailbox.language = language
    session.flush()
    return mailbox
