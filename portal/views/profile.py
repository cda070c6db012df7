"""The contact's profile: name, language, time zone, email, password, devices and sign-ins.

`/account` shows who the contact is (the name is editable; the email address is the
identity and changes only through support), links to the optional password page, lists
the live sessions with "sign out everywhere", and shows the last sign-ins from the audit
trail (when, how, from where), so a contact can spot a sign-in that was not theirs.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.auth.audit import record
from gateway.i18n import N_, known_language, language_names, time_zones
from gateway.models import AuditEvent, Contact, PortalSession, utcnow
from gateway.storage.database import orm
from portal import keys
from portal.sessions import audit_context, current_session, require_contact
from portal.templating import render

MAX_NAME = 200
RECENT_SIGNINS = 10


async def profile_page(
    request: web.Request, *, error: str | None = None, notice: str | None = None, status: int = 200
) -> web.Response:
    contact = await require_contact(request)
    settings = request.app[keys.SETTINGS]
    this_session = await current_session(request)
    now = utcnow()

    def read(session: Session) -> tuple[list[PortalSession], list[AuditEvent]]:
        live = session.scalars(
            select(PortalSession)
            .where(
                PortalSession.contact_id == contact.id,
                PortalSession.revoked_at.is_(None),
                PortalSession.expires_at > now,
                PortalSession.last_seen_at > now - timedelta(minutes=settings.session_idle_minutes),
            )
            .order_by(PortalSession.last_seen_at.desc())
        )
        signins = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.contact_id == contact.id, AuditEvent.event == "session.started")
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(RECENT_SIGNINS)
        )
        return list(live.all()), list(signins.all())

    live, signins = await request.app[keys.DB].read(orm(read))
    context = {
        "sessions": live,
        "this_session_id": this_session.id if this_session else None,
        "signins": signins,
        "error": error,
        "notice": notice,
        "languages": language_names(),
        "time_zones": time_zones(),
    }
    return await render(request, "profile.html", context, status=status)


async def profile_show(request: web.Request) -> web.Response:
    return await profile_page(request)


async def profile_update(request: web.Request) -> web.Response:
    """POST /account: change the display name, the language and the time zone."""
    contact = await require_contact(request)
    form = await request.post()
    name = " ".join(str(form.get("name") or "").split())
    if len(name) > MAX_NAME:
        return await profile_page(request, error=N_("Keep your name under 200 characters."), status=400)
    language = known_language(str(form.get("language") or "")) or contact.language
    time_zone = str(form.get("time_zone") or contact.time_zone or "UTC")
    if time_zone not in time_zones():
        return await profile_page(request, error=N_("Choose a time zone from the list."), status=400)
    values = {"name": name, "language": language, "time_zone": time_zone}

    def change(session: Session) -> None:
        session.execute(update(Contact).where(Contact.id == contact.id).values(**values))
        record(session, "profile.changed", contact=contact, detail={"fields": sorted(values)}, **audit_context(request))

    await request.app[keys.DB].write(change)
    contact.name, contact.language, contact.time_zone = name, language, time_zone
    request.pop(keys.TRANSLATOR, None)  # the page after saving speaks the new choice
    return await profile_page(request, notice=N_("Your details are saved."))
