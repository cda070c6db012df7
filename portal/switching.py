"""Whose sign-in is it: the masked address a Continue page shows, and the switch question.

Someone can hand a victim their own link, code or SSO handoff; following it would sign
the victim into the sender's account, where whatever the victim writes next is the
sender's to read. So every Continue page names the account it signs in to, masked
(`mask_email`: the first character of the local part, the whole domain), and a sign-in
that would replace a different contact's session on this browser is never done unasked:
`must_ask(request, contact_id)` says whether to ask, and `ask_to_switch` renders the
question, whose button re-posts the same form with `switch=yes` (`SWITCH_FIELD`). Asking
uses nothing up: no link, code attempt or SSO token is spent until the person confirms.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from portal.sessions import current_contact
from portal.templating import render

SWITCH_FIELD = "switch"
MASK = "\u2022\u2022\u2022"  # "•••"


def mask_email(address: str) -> str:
    """`jane@example.test` -> `j•••@example.test`: enough to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}{MASK}@{domain}"


def confirmed(form: Mapping[str, object]) -> bool:
    return form.get(SWITCH_FIELD) == "yes"


async def must_ask(request: web.Request, contact_id: int | None, form: Mapping[str, object] | None = None) -> bool:
    """True when another contact is signed in on this browser and the person has not yet agreed to switch."""
    if contact_id is None or (form is not None and confirmed(form)):
        return False
    signed_in = await current_contact(request)
    return signed_in is not None and signed_in.id != contact_id


async def ask_to_switch(
    request: web.Request,
    *,
    to_email: str,
    action: str,
    fields: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The question "you are signed in as X; continue as Y?", posting `fields` and `switch=yes` to `action`."""
    signed_in = await current_contact(request)
    context = {
        "current_masked": mask_email(signed_in.email) if signed_in is not None else "",
        "masked_email": mask_email(to_email),
        "action": action,
        "fields": dict(fields or {}),
        "switch_field": SWITCH_FIELD,
    }
    return await render(request, "switch_account.html", context, headers=headers)
