"""Rendering pages: the Jinja environment and the context every template can rely on.

Every page is rendered through `render(request, "name.html", {...})`, which adds:
`brand` (name, primary_color, accent_color, logo_url, support_email, initial), `contact`
(the signed-in Contact or None), `csrf_token` and `csrf_field` (the hidden input to put
in every form). Templates extend `base.html` and fill `title` and `content`. Links come
from route names: `paths.tickets` is the path of a route without variable parts
(`RoutePaths`), `url("ticket", public_id=…)` builds one with parts (`url_builder`);
`portal.formatting` adds filters (`ago`, `when`, …). A
file in the `template_dir` setting replaces the packaged template of the same name.
Error pages use `render_error`, which never needs the database, so a 500 or 503 page
renders even while the database is down.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from portal import keys
from portal.branding import brand_for, fallback_brand
from portal.csrf import csrf_token
from portal.formatting import FILTERS
from portal.languages import page_translator, visitor_translator
from portal.sessions import current_contact

SECRET_PATHS = ("/l/", "/sso/", "/agent/files/", "/rate/")  # paths whose URLs hold a link, SSO, download or rating token


def url_builder(router: web.UrlDispatcher) -> Callable[..., str]:
    """The templates' `url(name, **parts)`: a path from the route table.

    Paths are remembered (a static file's version hash means reading the file), except
    those under SECRET_PATHS, whose parts hold a token and are never kept.
    """

    @functools.cache
    def is_secret(name: str) -> bool:
        return router[name].canonical.startswith(SECRET_PATHS)

    def build(name: str, parts: Iterable[tuple[str, object]]) -> str:
        return str(router[name].url_for(**{key: str(value) for key, value in parts}))

    remembered = functools.lru_cache(maxsize=4096)(build)

    def url(name: str, **parts: object) -> str:
        if is_secret(name):
            return build(name, parts.items())
        return remembered(name, tuple(parts.items()))

    return url


class RoutePaths:
    """The templates' `paths.<route name>`: the path of a named route without variable parts.

    A page frame links to a dozen fixed paths; through `url(...)` each cost a Jinja call
    and an escape, a third of rendering the ticket list. A path is looked up in the route
    table the first time it is asked for (routes are added after the templates are set up)
    and kept as a plain attribute, so later pages read it like any other value.
    """

    def __init__(self, router: web.UrlDispatcher) -> None:
        self._router = router

    def __getattr__(self, name: str) -> str:  # only for names not yet kept
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._router:
            raise LookupError(f"no route named {name!r}")  # not AttributeError: Jinja would print nothing
        resource = self._router[name]
        if "path" not in resource.get_info():
            raise LookupError(f"route {name!r} has variable parts: use url({name!r}, ...)")
        path = str(resource.url_for())
        setattr(self, name, path)
        return path


def setup_templates(app: web.Application) -> None:
    """Templates from the package, each overridable by a file of that name in `template_dir`.

    Templates are compiled once: a changed template file shows after a restart.
    """
    loader: jinja2.BaseLoader = jinja2.PackageLoader("portal", "templates")
    overrides = app[keys.SETTINGS].template_dir
    if overrides is not None:
        loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(overrides), loader])
    environment = aiohttp_jinja2.setup(
        app,
        loader=loader,
        autoescape=jinja2.select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        filters=FILTERS,
        auto_reload=False,
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_null_translations()  # type: ignore[attr-defined]  # each page passes its own
    environment.globals["url"] = url_builder(app.router)
    environment.globals["paths"] = RoutePaths(app.router)
    app[aiohttp_jinja2.static_root_key] = "/static"


def _csrf_field(token: str) -> Markup:
    return Markup(f'<input type="hidden" name="csrf_token" value="{escape(token)!s}">')


async def page_context(request: web.Request) -> dict[str, Any]:
    token = await csrf_token(request)
    brand = await brand_for(request)
    contact = await current_contact(request)
    speaking = await page_translator(request)
    return {
        **speaking.template_values(),
        "brand": brand,
        "contact": contact,
        "csrf_token": token,
        "csrf_field": _csrf_field(token),
        "current_path": request.path,  # the navigation marks its link aria-current
    }


async def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Render `template` with the common page context plus `context`."""
    full = await page_context(request)
    full.update(context or {})
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    if headers:
        response.headers.update(headers)
    return response


async def render_error(
    request: web.Request,
    status: int,
    title: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    template: str = "error.html",
    context: Mapping[str, Any] | None = None,
) -> web.Response:
    """An error page that renders whatever state the database is in."""
    try:
        full = await page_context(request)
    except Exception:  # noqa: BLE001 - the page must render even when the session lookup fails
        brand = request.app[keys.BRANDS].brand or fallback_brand(request.app[keys.SETTINGS])
        full = {
            **visitor_translator(request, brand).template_values(),
            "brand": brand,
            "contact": None,
            "csrf_token": "",
            "csrf_field": Markup(""),
            "current_path": request.path,
        }
    full.update({"title": title, "message": message, "status": status, **(context or {})})
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    if headers:
        response.headers.update(headers)
    return response
