"""An example integration: a small aiohttp service that turns Wicket's webhooks into leads.

Wicket posts every new customer message (`message.received`) and ticket change, signed per
the Standard Webhooks specification. This service verifies the signature with the
`standardwebhooks` package, ignores what it does not need, and keeps one lead per
sender with the subjects they wrote about.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LEADS = web.AppKey("leads", dict)
VERIFIER = web.AppKey("verifier", Webhook)


@dataclass
class Lead:
    email: str
    name: str
    subjects: list[str] = field(default_factory=list)
    tickets: set[int] = field(default_factory=set)


async def wicket_webhook(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        event = request.app[VERIFIER].verify(body, dict(request.headers))
    except WebhookVerificationError:
        raise web.HTTPUnauthorized(text="bad signature") from None
    if event["type"] == "message.received":
        message = event["data"]
        sender = message["from"]
        lead = request.app[LEADS].setdefault(sender["email"], Lead(sender["email"], sender.get("name", "")))
        lead.subjects.append(message["subject"])
        lead.tickets.update(ticket["ref"] for ticket in message.get("tickets", []))
    return web.Response(status=204)


def create_app(signing_secret: str) -> web.Application:
    app = web.Application()
    app[LEADS] = {}
    app[VERIFIER] = Webhook(signing_secret)
    app.router.add_post("/hooks/wicket", wicket_webhook)
    return app
