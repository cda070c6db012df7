"""Template filters: dates people read at a glance, file sizes, and status words.

Registered on the Jinja environment by `portal.templating.setup_templates`: `when` (the
exact date and time in the reader's locale and time zone, for `title` attributes and
`<time>`), `ago` ("5 minutes ago", "3 Nov 2026"), `filesize` ("1.2 MB") and `status_label` (what a ticket status means to the
customer: "pending" is "Waiting for your reply"). Inside templates each reads the page's
`translator` (gateway.i18n); Python callers pass one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from babel.dates import format_timedelta
from jinja2 import pass_context
from jinja2.runtime import Context

from gateway.i18n import N_, Translator, translator
from gateway.models import utcnow
from gateway.tickets.files import filesize

STATUS_LABELS = {
    "open": N_("Open"),
    "pending": N_("Waiting for your reply"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
}

ENGLISH = translator(None)
BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
SYSTEMS = (
    ("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"),
    ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"),
)  # fmt: skip


def when(moment: datetime | None, speaking: Translator = ENGLISH) -> str:
    """The exact date and time in the reader's locale and time zone."""
    return speaking.datetime(moment, "medium")


def ago(moment: datetime | None, now: datetime | None = None, speaking: Translator = ENGLISH) -> str:
    """"5 minutes ago", or the date for anything older than a week, in the reader's words."""
    if moment is None:
        return ""
    elapsed = (now or utcnow()) - moment
    if elapsed < timedelta(minutes=1):
        return speaking.gettext("just now")
    if elapsed > timedelta(days=6):
        return speaking.date(moment, "medium")
    return format_timedelta(-elapsed, add_direction=True, locale=speaking.language)


def status_label(status: str, speaking: Translator = ENGLISH) -> str:
    return speaking.gettext(STATUS_LABELS[status]) if status in STATUS_LABELS else status.capitalize()


def device(user_agent: str | None, speaking: Translator = ENGLISH) -> str:
    """A readable browser and system from a User-Agent header ("Unknown device" when unclear)."""
    agent = user_agent or ""
    browser = next((name for token, name in BROWSERS if token in agent), None)
    system = next((name for token, name in SYSTEMS if token in agent), None)
    if browser and system:
        return speaking.gettext("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    return browser or system or speaking.gettext("Unknown device")


@pass_context
def _device(context: Context, user_agent: str | None) -> str:
    return device(user_agent, context["translator"])


@pass_context
def _when(context: Context, moment: datetime | None) -> str:
    return when(moment, context["translator"])


@pass_context
def _ago(context: Context, moment: datetime | None) -> str:
    return ago(moment, speaking=context["translator"])


@pass_context
def _status_label(context: Context, status: str) -> str:
    return status_label(status, context["translator"])


FILTERS: dict[str, Callable[..., str]] = {
    "when": _when,
    "ago": _ago,
    "filesize": filesize,
    "status_label": _status_label,
    "device": _device,
}
