"""SSO handoff: `GET /sso/jwt?jwt=…` signs in a user the host product already signed in.

The host product signs a short-lived JWT (HS256 with a shared secret, or RS256/ES256 with
a private key whose public half Wicket holds) carrying `email`, `name`, `exp`, `iat`,
`jti` and optionally `return_to`. `decode_handoff` is pure: it checks the signature with
pyjwt, pinned to the one configured algorithm, then the times against the `now` it is
given, the claims' shapes, and the optional audience/issuer; it raises `SsoRefused` with a
reason. The view then stores the `jti` (hashed) until the token can no longer be used, so
a token works once, finds or creates the contact by the email the host product vouches
for, starts a session and redirects to `return_to` when it is a safe local path.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import jwt
from aiohttp import web
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.auth.audit import record
from gateway.auth.ratelimit import check, failure_rules, hit
from gateway.directory.contacts import contact_for
from gateway.models import UsedSsoToken, utcnow
from gateway.settings import Settings
from portal import keys
from portal.redirects import return_path_or_list
from portal.sessions import audit_context, client_ip, current_contact, start_session
from portal.switching import ask_to_switch, confirmed
from portal.templating import render
from portal.views.signin import normalize_email

log = logging.getLogger(__name__)

LEEWAY = timedelta(seconds=30)


class SsoRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Handoff:
    email: str
    name: str
    jti: str
    usable_until: datetime
    return_to: str | None


def _key(settings: Settings) -> str:
    if settings.sso_jwt_algorithm == "HS256" and settings.sso_jwt_secret is not None:
        return settings.sso_jwt_secret.get_secret_value()
    return settings.sso_jwt_public_key or ""


def _timestamp(claims: dict[str, Any], name: str) -> datetime:
    value = claims.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise SsoRefused(f"claim {name} is not a timestamp")
    return datetime.fromtimestamp(value, UTC)


def decode_handoff(settings: Settings, token: str, *, now: datetime) -> Handoff:
    """The verified handoff in `token`, or SsoRefused saying why."""
    if not settings.sso_jwt_algorithm:
        raise SsoRefused("SSO is not configured")
    try:
        claims = jwt.decode(
            token,
            _key(settings),
            algorithms=[settings.sso_jwt_algorithm],
            audience=settings.sso_jwt_audience,
            issuer=settings.sso_jwt_issuer,
            options={
                "require": ["exp", "iat", "jti", "email"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": settings.sso_jwt_audience is not None,
                "verify_iss": settings.sso_jwt_issuer is not None,
            },
        )
    except jwt.InvalidSignatureError:
        raise SsoRefused("bad signature") from None
    except jwt.InvalidTokenError as error:
        raise SsoRefused(f"invalid token ({type(error).__name__})") from None
    expires, issued = _timestamp(claims, "exp"), _timestamp(claims, "iat")
    if expires <= now - LEEWAY:
        raise SsoRefused("expired")
    if issued > now + LEEWAY or ("nbf" in claims and _timestamp(claims, "nbf") > now + LEEWAY):
        raise SsoRefused("not valid yet")
    max_age = timedelta(seconds=settings.sso_max_age_seconds)
    if now - issued > max_age:
        raise SsoRefused("issued too long ago")
    email, jti, name = normalize_email(claims.get("email")), claims.get("jti"), claims.get("name") or ""
    if email is None:
        raise SsoRefused("claim email is not an address")
    if not isinstance(jti, str) or not 0 < len(jti) <= 255 or not isinstance(name, str):
        raise SsoRefused("claim jti or name is malformed")
    return_to = claims.get("return_to")
    return Handoff(
        email=email,
        name=name[:200],
        jti=jti,
        usable_until=min(expires, issued + max_age) + LEEWAY,
        return_to=return_to if isinstance(return_to, str) else None,
    )


def claim_jti(session: Session, settings: Settings, handoff: Handoff, now: datetime) -> bool:
    """Record the handoff's `jti` as used; False when it was used before."""
    session.execute(delete(UsedSsoToken).where(UsedSsoToken.expires_at < now))
    digest = hashlib.sha256(f"{settings.sso_jwt_issuer or ''}|{handoff.jti}".encode()).hexdigest()
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        module.insert(UsedSsoToken)
        .values(jti_hash=digest, expires_at=handoff.usable_until)
        .on_conflict_do_nothing(index_elements=["jti_hash"])
        .returning(UsedSsoToken.id)
    )
    return session.execute(statement).scalar() is not None


async def sso_jwt(request: web.Request) -> web.StreamResponse:
    """GET /sso/jwt?jwt=…: verify the host product's token, sign its user in, redirect."""
    return await _handoff(request, request.query.get("jwt", ""), switch=False)


async def sso_jwt_confirm(request: web.Request) -> web.StreamResponse:
    """POST /sso/jwt (jwt, switch=yes): the same handoff, once the person agreed to switch accounts."""
    form = await request.post()
    token = form.get("jwt")
    return await _handoff(request, token if isinstance(token, str) else "", switch=confirmed(form))


async def _handoff(request: web.Request, token: str, *, switch: bool) -> web.StreamResponse:
    settings, db = request.app[keys.SETTINGS], request.app[keys.DB]
    if not settings.sso_jwt_algorithm:
        raise web.HTTPNotFound()
    ip_rule = failure_rules(settings)[1]
    now = utcnow()
    handoff, reason = None, None
    try:
        handoff = decode_handoff(settings, token, now=now)
    except SsoRefused as refused:
        reason = refused.reason
        # Only a token that fails is held back by the per-IP limit: a valid one signs in
        # even from an address (a proxy, a shared network) that others have used up.
        await db.read(partial(check, settings=settings, rule=ip_rule, subject=client_ip(request)))
    signed_in = await current_contact(request)
    if handoff is not None and signed_in is not None and signed_in.email != handoff.email and not switch:
        action = str(request.app.router["sso_jwt"].url_for())
        return await ask_to_switch(request, to_email=handoff.email, action=action, fields={"jwt": token})

    def sign_in(session: Session) -> str | None:
        """Where to go once signed in, or None when refused (the refusal audited and counted)."""
        refusal, target = reason, None
        if handoff is not None and not claim_jti(session, settings, handoff, now):
            refusal = "jti already used"
        elif handoff is not None:
            contact = contact_for(session, handoff.email, handoff.name)
            start_session(session, request, contact.id, method="sso")
            record(session, "sso.signin", contact=contact, **audit_context(request))
            target = return_path_or_list(handoff.return_to)
        if refusal is not None:
            log.info("SSO sign-in refused: %s", refusal)
            record(session, "sso.refused", detail={"reason": refusal}, **audit_context(request))
            hit(session, settings, ip_rule, client_ip(request), enforce=False)
        return target

    target = await db.write(sign_in)
    if target is not None:
        raise web.HTTPSeeOther(target)
    return await render(request, "sso_refused.html", status=403)
