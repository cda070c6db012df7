"""Template filters: dates people read at a glance, file sizes, and status words.

Registered on the Jinja environment by `portal.templating.setup_templates`: `when` (an
exact UTC date and time, for `title` attributes and `<time>`), `ago` ("5 minutes ago",
"3 Nov"), `filesize` ("1.2 MB") and `status_label` (what a ticket status means to the
customer: "pending" is "Waiting for your reply").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gateway.models import utcnow
from gateway.tickets.files import filesize

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
STATUS_LABELS = {
    "open": "Open",
    "pending": "Waiting for your reply",
    "resolved": "Resolved",
    "closed": "Closed",
}

BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
SYSTEMS = (
    ("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"),
    ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"),
)  # fmt: skip


def _day_month(moment: datetime) -> str:
    """`3 Nov`: English month names whatever the server's locale (strftime's %b follows it)."""
    return f"{moment.day} {MONTHS[moment.month - 1]}"


def when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return f"{_day_month(moment)} {moment.year}, {moment.hour:02d}:{moment.minute:02d} UTC"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    seconds = int(((now or utcnow()) - moment).total_seconds())
    if seconds < 60:
        return "just now"
    # Branches, not a loop over the units: a ticket list formats twenty of these a request.
    if seconds < 3_600:
        count, unit = seconds // 60, "minute"
    elif seconds < 86_400:
        count, unit = seconds // 3_600, "hour"
    else:
        count, unit = seconds // 86_400, "day"
        if count > 6:
            return _day_month(moment) if count < 300 else f"{_day_month(moment)} {moment.year}"
    return f"{count} {unit}{'' if count == 1 else 's'} ago"



def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status.capitalize())


def device(user_agent: str | None) -> str:
    """A readable browser and system from a User-Agent header ("Unknown device" when unclear)."""
    agent = user_agent or ""
    browser = next((name for token, name in BROWSERS if token in agent), None)
    system = next((name for token, name in SYSTEMS if token in agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"


FILTERS: dict[str, Callable[..., str]] = {
    "when": when,
    "ago": ago,
    "filesize": filesize,
    "status_label": status_label,
    "device": device,
}
