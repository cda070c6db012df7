"""Languages: which one a reader gets, and the translator that speaks it.

English is the source language of every template and message; `locale/<lang>/LC_MESSAGES/
messages.po` holds each other language. The catalogs are compiled in memory the first time
a language is asked for (README, "Languages", says why not at build time). A `Translator`
is the one way to speak a language: Jinja's i18n extension reads its `gettext`/`ngettext`
from the render context (`Translator.template_values`), and it formats dates and times in
the reader's locale and time zone. The choice of language is `choose_language`: the
contact's own choice, else the browser's Accept-Language, else the mailbox default.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale, dates
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

SOURCE_LANGUAGE = "en"
LANGUAGES = ("en", "de", "fr", "es", "ar")  # what the portal and customer mail speak
RIGHT_TO_LEFT = frozenset({"ar"})
LOCALE_DIR = Path(__file__).parent / "locale"


def N_(message: str) -> str:
    """Marks `message` for the catalogs where it is defined; it is translated where it is shown."""
    return message


@functools.cache
def language_names() -> tuple[tuple[str, str], ...]:
    """(code, the language's name in itself) for the profile's select."""
    return tuple((code, Locale.parse(code).get_display_name(code).capitalize()) for code in LANGUAGES)


@functools.cache
def time_zones() -> tuple[str, ...]:
    """Every IANA time zone a contact may pick, sorted, UTC first."""
    return ("UTC", *sorted(zone for zone in available_timezones() if "/" in zone and not zone.startswith("Etc/")))


def known_language(code: str | None) -> str | None:
    """`code` if Wicket speaks it (region dropped: "de-AT" is "de"), else None."""
    if not code:
        return None
    base = code.replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def negotiate(accept_language: str | None) -> str | None:
    """The best language of an Accept-Language header that Wicket speaks, or None."""
    wanted: list[tuple[float, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            wanted.append((-quality, f"{position:03d}{tag.strip()}"))
    preferred = [tag[3:].replace("-", "_") for _, tag in sorted(wanted)]
    best = Locale.negotiate(preferred, list(LANGUAGES), sep="_")
    return known_language(str(best)) if best else None


def choose_language(contact_language: str | None, accept_language: str | None, mailbox_language: str | None) -> str:
    """The contact's choice, else the browser's, else the mailbox default, else English."""
    return (
        known_language(contact_language)
        or negotiate(accept_language)
        or known_language(mailbox_language)
        or SOURCE_LANGUAGE
    )


@functools.cache
def _catalog(language: str) -> NullTranslations:
    """The compiled catalog of `language` (English: the source strings themselves)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == SOURCE_LANGUAGE or not path.exists():
        return NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class Translator:
    """One reader's language and time zone: their words, their dates."""

    language: str
    time_zone: str = "UTC"

    @property
    def direction(self) -> str:
        return "rtl" if self.language in RIGHT_TO_LEFT else "ltr"

    def gettext(self, message: str) -> str:
        return _catalog(self.language).ugettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return _catalog(self.language).ungettext(singular, plural, count)

    def datetime(self, moment: datetime | None, format: str = "medium") -> str:
        """`moment` as the reader writes dates and times, in their time zone."""
        if moment is None:
            return ""
        return dates.format_datetime(moment, format, tzinfo=_zone(self.time_zone), locale=self.language)

    def date(self, moment: datetime | None, format: str = "medium") -> str:
        if moment is None:
            return ""
        return dates.format_date(moment.astimezone(_zone(self.time_zone)), format, locale=self.language)

    def template_values(self) -> dict[str, Any]:
        """What a template needs to speak this language (Jinja's i18n names, `lang`, `dir`)."""
        return {
            "gettext": self.gettext,
            "_": self.gettext,
            "ngettext": self.ngettext,
            "lang": self.language,
            "dir": self.direction,
            "translator": self,
        }


def translator(language: str | None, time_zone: str | None = None) -> Translator:
    """The one way to get a translator: an unknown language is English, an unknown zone UTC."""
    return Translator(known_language(language) or SOURCE_LANGUAGE, time_zone if time_zone in time_zones() else "UTC")
