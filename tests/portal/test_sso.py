"""SSO handoff: a signed JWT from the host product signs its user straight into the portal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select
from sqlalchemy.orm import Session
from yarl import URL

from gateway.models import Contact
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.portal.helpers import Client, MakeClient, add_contact, audit_events, live_sessions, with_settings

SHARED = "a-shared-secret-that-is-long-enough-for-hs256"


@pytest.fixture
def sso_settings(settings: Settings) -> Settings:
    return with_settings(settings, sso_jwt_algorithm="HS256", sso_jwt_secret=SHARED)


@pytest.fixture
async def sso(make_client: MakeClient, sso_settings: Settings) -> Client:
    return await make_client(sso_settings)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"email": "carol@example.test", "name": "Carol", "iat": now, "exp": now + 120, "jti": uuid.uuid4().hex}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def handoff(token: str) -> str:
    return str(URL("/sso/jwt").with_query(jwt=token))


async def test_sso_token_creates_the_contact_and_signs_in_without_a_second_step(sso: Client, db: Database) -> None:
    response = await sso.get(handoff(jwt.encode(claims(), SHARED, algorithm="HS256")), allow_redirects=False)

    assert response.status == 303 and response.headers["Location"] == "/tickets"

    def look(session: Session):
        carol = session.scalar(select(Contact).where(Contact.email == "carol@example.test"))
        return carol

    carol = await db.read(orm(look))
    assert carol is not None and carol.name == "Carol"
    [session_row] = await live_sessions(db, carol)
    assert session_row.method == "sso"
    assert "carol@example.test" in await (await sso.get("/tickets")).text()
    assert len(await audit_events(db, "sso.signin")) == 1


async def test_sso_matches_an_existing_contact_by_email_and_honours_a_local_return_to(
    sso: Client, db: Database
) -> None:
    alice = await add_contact(db)
    token = jwt.encode(claims(email="ALICE@example.test", return_to="/tickets/xyz"), SHARED, algorithm="HS256")
    response = await sso.get(handoff(token), allow_redirects=False)
    assert response.headers["Location"] == "/tickets/xyz"
    assert len(await live_sessions(db, alice)) == 1


@pytest.mark.parametrize("target", ["https://evil.test/", "//evil.test", "/\\evil.test", "/%2F%2Fevil.test"])
async def test_sso_return_to_elsewhere_goes_to_the_ticket_list(sso: Client, target: str) -> None:
    token = jwt.encode(claims(return_to=target), SHARED, algorithm="HS256")
    response = await sso.get(handoff(token), allow_redirects=False)
    assert response.headers["Location"] == "/tickets"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: jwt.encode(claims(), "not-the-shared-secret-but-long-enough", algorithm="HS256"), "bad signature"),
        (lambda: jwt.encode(claims(exp=int(time.time()) - 300), SHARED, algorithm="HS256"), "expired"),
        (lambda: jwt.encode(claims(iat=int(time.time()) - 3600, exp=int(time.time()) + 60), SHARED, algorithm="HS256"),
         "issued too long ago"),
        (lambda: jwt.encode(claims(jti=None), SHARED, algorithm="HS256"), "invalid token"),
        (lambda: jwt.encode(claims(email="not-an-address"), SHARED, algorithm="HS256"), "email"),
        (lambda: jwt.encode(claims(), None, algorithm="none"), "invalid token"),
        (lambda: "garbage", "invalid token"),
    ],
)
async def test_bad_sso_tokens_are_refused(sso: Client, db: Database, token: Any, reason: str) -> None:
    response = await sso.get(handoff(token()), allow_redirects=False)
    assert response.status == 403
    assert "That sign-in did not work" in await response.text()
    assert await live_sessions(db) == []
    [refused] = await audit_events(db, "sso.refused")
    assert reason in refused.detail["reason"]


async def test_replayed_sso_token_is_refused(sso: Client, db: Database) -> None:
    token = jwt.encode(claims(), SHARED, algorithm="HS256")
    assert (await sso.get(handoff(token), allow_redirects=False)).status == 303
    replay = await sso.get(handoff(token), allow_redirects=False)
    assert replay.status == 403
    [refused] = await audit_events(db, "sso.refused")
    assert refused.detail["reason"] == "jti already used"
    assert len(await live_sessions(db)) == 1


async def test_sso_is_off_unless_configured(client: Client) -> None:
    token = jwt.encode(claims(), SHARED, algorithm="HS256")
    assert (await client.get(handoff(token), allow_redirects=False)).status == 404


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _hs256_signed_with(secret: str, payload: dict[str, Any]) -> str:
    """An algorithm-confusion forgery: HS256 keyed with the (public) PEM text."""
    signing_input = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(json.dumps(payload).encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def _pem(private_key: Any) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize(
    ("algorithm", "make_key"),
    [
        ("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", lambda: ec.generate_private_key(ec.SECP256R1())),
    ],
)
async def test_sso_with_a_public_key_accepts_the_host_products_signature_only(
    make_client: MakeClient, settings: Settings, db: Database, algorithm: str, make_key: Any
) -> None:
    host_key, stranger_key = make_key(), make_key()
    client = await make_client(with_settings(settings, sso_jwt_algorithm=algorithm, sso_jwt_public_key=_pem(host_key)))

    good = await client.get(handoff(jwt.encode(claims(), host_key, algorithm=algorithm)), allow_redirects=False)
    forged = await client.get(handoff(jwt.encode(claims(), stranger_key, algorithm=algorithm)), allow_redirects=False)
    confused = await client.get(handoff(_hs256_signed_with(_pem(host_key), claims())), allow_redirects=False)

    assert good.status == 303
    assert forged.status == 403 and confused.status == 403


def test_sso_settings_need_a_key_for_their_algorithm(settings: Settings) -> None:
    with pytest.raises(ValueError, match="sso_jwt_secret"):
        with_settings(settings, sso_jwt_algorithm="HS256")
    with pytest.raises(ValueError, match="sso_jwt_public_key"):
        with_settings(settings, sso_jwt_algorithm="RS256")
