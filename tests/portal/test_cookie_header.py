"""The Set-Cookie header `write_cookie` builds: every attribute, read back by the standard library."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest
from aiohttp import web

from portal.cookies import write_cookie


def written(name: str, value: str, *, secure: bool, max_age: int | None = None) -> str:
    response = web.Response()
    write_cookie(response, name, value, secure=secure, max_age=max_age)
    [header] = response.headers.getall("Set-Cookie")
    return header


def attributes(header: str) -> dict[str, str]:
    return {part.strip().split("=", 1)[0].lower(): part.strip() for part in header.split(";")[1:]}


def test_a_session_cookie_over_https_carries_every_attribute() -> None:
    header = written("__Host-wicket", "abc_DEF-123", secure=True, max_age=86_400)
    assert header.startswith("__Host-wicket=abc_DEF-123;")
    assert attributes(header) == {
        "httponly": "HttpOnly", "path": "Path=/", "samesite": "SameSite=Lax", "secure": "Secure",
        "max-age": "Max-Age=86400",
    }
    parsed = SimpleCookie(header)["__Host-wicket"]
    assert (parsed.value, parsed["max-age"], parsed["path"], parsed["samesite"]) == ("abc_DEF-123", "86400", "/", "Lax")


def test_a_cookie_without_max_age_lasts_the_browser_session_and_is_not_secure_over_http() -> None:
    header = written("wicket-csrf", "seed", secure=False)
    assert header.startswith("wicket-csrf=seed;")
    assert attributes(header) == {"httponly": "HttpOnly", "path": "Path=/", "samesite": "SameSite=Lax"}


def test_a_cleared_cookie_is_empty_and_expired() -> None:
    header = written("wicket", "", secure=False, max_age=0)
    assert header.startswith("wicket=;")  # empty, not the quoted "" http.cookies would code it as
    assert attributes(header) == {
        "httponly": "HttpOnly", "path": "Path=/", "samesite": "SameSite=Lax", "max-age": "Max-Age=0",
        "expires": "expires=Thu, 01 Jan 1970 00:00:00 GMT",
    }


@pytest.mark.parametrize("value", ["a b", "a;b", 'a"b', "a=b", "é"])
def test_only_url_safe_tokens_are_written(value: str) -> None:
    with pytest.raises(ValueError, match="URL-safe token"):
        written("wicket", value, secure=False)
