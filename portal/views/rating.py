"""`/rate/{token}`: the customer's "How did we do?" after a resolution (gateway/tickets/satisfaction.py).

GET shows the question with the two answers and a comment box (the answer the mail's
link named is preselected) and changes nothing, and HEAD answers 200 with nothing, so a
mail scanner that fetches the link rates nothing; the form's POST (CSRF-checked like
every form) stores the rating once per resolution. The token is the credential, so no
sign-in is needed; the page holds it in its URL and is sent with `no-referrer`.
"""

from __future__ import annotations

from functools import partial

from aiohttp import web
from sqlalchemy.orm import Session

from gateway.tickets.satisfaction import MAX_COMMENT, RatingOutcome, find_rating_link, rate
from portal import keys
from portal.sessions import audit_context
from portal.templating import render

TOKEN_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
ANSWERS = {"good": True, "bad": False}
DONE = {
    RatingOutcome.RATED: (200, "Thank you", "Your answer reached the team. It helps us get better."),
    RatingOutcome.ALREADY: (200, "Already answered", "This resolution has been rated already; thank you."),
    RatingOutcome.EXPIRED: (410, "This link has expired", "Rating links work for two weeks after a resolution."),
    RatingOutcome.UNKNOWN: (404, "This link does not work", "It may be incomplete: copy the whole link from the email."),
}


async def rating_head(request: web.Request) -> web.Response:
    """HEAD /rate/{token}: 200 and nothing else."""
    return web.Response(status=200, content_type="text/html", headers=TOKEN_HEADERS)


async def rating_page(request: web.Request) -> web.Response:
    """GET /rate/{token}: the question; nothing is stored."""
    token, settings = request.match_info["token"], request.app[keys.SETTINGS]
    _, refusal = await request.app[keys.DB].read(lambda connection: find_rating_link(Session(connection), settings, token))
    if refusal is not None:
        return await _done(request, refusal)
    chosen = request.query.get("rating") if request.query.get("rating") in ANSWERS else None
    context = {"token": token, "chosen": chosen, "max_comment": MAX_COMMENT}
    return await render(request, "rating.html", context, headers=TOKEN_HEADERS)


async def rating_submit(request: web.Request) -> web.Response:
    """POST /rate/{token}: store the answer once per resolution."""
    token, settings = request.match_info["token"], request.app[keys.SETTINGS]
    form = await request.post()
    answer = str(form.get("rating") or "")
    if answer not in ANSWERS:
        context = {"token": token, "chosen": None, "max_comment": MAX_COMMENT, "error": "Choose Good or Bad."}
        return await render(request, "rating.html", context, status=400, headers=TOKEN_HEADERS)
    work = partial(rate, settings=settings, events=request.app[keys.PROCESSOR].events, token=token,
                   good=ANSWERS[answer], comment=str(form.get("comment") or ""), **audit_context(request))  # fmt: skip
    return await _done(request, await request.app[keys.DB].write(work))


async def _done(request: web.Request, outcome: RatingOutcome) -> web.Response:
    status, title, message = DONE[outcome]
    return await render(request, "rating_done.html", {"title": title, "message": message}, status=status,
                        headers=TOKEN_HEADERS)  # fmt: skip
