"""`/api/v1/me/notifications`: which tickets the agent is mailed about, and their daily digest.

The agent reads and changes their own settings per mailbox, through
gateway.directory.preferences, the same functions `wicket agents set-notify` runs;
naming a mailbox that is not theirs is a 404, as for any object outside their mailboxes.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.orm import Session

from gateway.directory.preferences import MailboxPreferences, NotTheirMailbox, preferences_of, set_preferences
from gateway.models import Agent, NotifyPolicy
from portal import keys
from portal.views.api_http import ApiFailure, api_view, authenticate, ok, read_body
from portal.views.api_schema import MailboxNotifications, NotificationRequest, NotificationSettings


def _notifications(found: list[MailboxPreferences]) -> NotificationSettings:
    return NotificationSettings(mailboxes=[
        MailboxNotifications(mailbox=p.mailbox, policy=NotifyPolicy(p.policy), daily_digest=p.daily_digest,
                             digest_hour=p.digest_hour)
        for p in found
    ])


@api_view
async def read_notifications(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)
    found = await request.app[keys.DB].read(lambda connection: preferences_of(connection, access.agent_id))
    return ok(_notifications(found))


@api_view
async def change_notifications(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)
    body = await read_body(NotificationRequest, request)

    def change(session: Session) -> list[MailboxPreferences]:
        agent = session.get_one(Agent, access.agent_id)
        set_preferences(session, agent.email, mailboxes=body.mailboxes, policy=body.policy,
                        daily_digest=body.daily_digest)
        return preferences_of(session.connection(), agent.id)

    try:
        found = await request.app[keys.DB].write(change)
    except NotTheirMailbox as error:
        raise ApiFailure(404, str(error)) from None
    return ok(_notifications(found))
