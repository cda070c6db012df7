"""The portal's URL table: every path, its handler and its route name, grouped by area.

`setup_routes(app)` is called once by `create_app`. To add an area, write an
`add_<area>_routes(router)` function below (or import one) and call it from
`setup_routes`. Build URLs from route names, never by hand: in views
`request.app.router["tickets"].url_for()`, in templates `url("tickets")`.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from portal import auth, branding, keys
from portal.sso import sso_jwt, sso_jwt_confirm
from portal.views import account, attachments, profile, rating, requests, signin, start, tickets
from portal.views import help as help_center
from portal.views.api import add_api_routes
from portal.views.api_routes import add_api_route_routes
from portal.views.devmail import add_devmail_routes
from portal.views.ops import add_ops_routes
from portal.views.webhook_files import add_webhook_file_routes

STATIC_DIR = Path(__file__).resolve().parent / "static"


def setup_routes(app: web.Application) -> None:
    router = app.router
    router.add_static("/static", STATIC_DIR, name="static", append_version=True)
    router.add_get("/brand.css", branding.brand_css, name="brand_css")
    router.add_get("/favicon.ico", branding.favicon, name="favicon")
    router.add_get("/", tickets.home, name="home")
    add_auth_routes(router)
    add_account_routes(router)
    add_ticket_routes(router)
    add_help_routes(router)
    add_api_routes(router)  # the agent JSON API
    add_api_route_routes(router)  # its routes
    add_ops_routes(router)  # /healthz, /readyz, /metrics
    add_webhook_file_routes(router)  # large attachments of webhook events, by signed link
    if app[keys.SETTINGS].dev:
        add_devmail_routes(router)  # the dev mail viewer


def add_auth_routes(router: web.UrlDispatcher) -> None:
    """Signing in and out: magic links, codes, /login, SSO, password sign-in."""
    router.add_get("/l/{token}", auth.link_page, name="link", allow_head=False)
    router.add_route("HEAD", "/l/{token}", auth.link_head)
    router.add_post("/l/{token}", auth.link_exchange)
    router.add_post("/l/{token}/resend", auth.link_resend, name="link_resend")
    router.add_get("/login", signin.login_page, name="login")
    router.add_post("/login", signin.login_request)
    router.add_post("/login/password", signin.password_signin, name="login_password")
    router.add_get("/code", signin.code_page, name="code")
    router.add_post("/code", signin.code_signin)
    router.add_get("/sso/jwt", sso_jwt, name="sso_jwt", allow_head=False)
    router.add_post("/sso/jwt", sso_jwt_confirm)


def add_account_routes(router: web.UrlDispatcher) -> None:
    """The signed-in contact's own settings and sign-out."""
    router.add_get("/logout", account.logout_page, name="logout")
    router.add_post("/logout", account.logout)
    router.add_post("/logout-everywhere", account.logout_everywhere, name="logout_everywhere")
    router.add_get("/account", profile.profile_show, name="profile")
    router.add_post("/account", profile.profile_update)
    router.add_get("/account/password", account.password_page, name="account_password")
    router.add_post("/account/password", account.password_change)


def add_ticket_routes(router: web.UrlDispatcher) -> None:
    """The contact's tickets: list, page, inline reply, closing, attachments, new requests; agents' file links."""
    router.add_get("/tickets", tickets.ticket_list, name="tickets")
    router.add_get("/tickets/{public_id}", tickets.ticket_page, name="ticket")
    router.add_post("/tickets/{public_id}/reply", requests.reply, name="ticket_reply")
    router.add_post("/tickets/{public_id}/close", tickets.close_ticket, name="ticket_close")
    router.add_get("/tickets/{public_id}/attachments/{attachment_id}", attachments.download, name="attachment")
    router.add_get("/tickets/{public_id}/messages/{message_id}/original", attachments.original, name="message_original")
    router.add_get("/agent/files/{download}", attachments.agent_download, name="agent_file")
    router.add_get("/requests/new", requests.new_request_page, name="new_request")
    router.add_post("/requests/new", requests.new_request)
    router.add_get("/requests/start", start.start_page, name="start_request")
    router.add_get("/rate/{token}", rating.rating_page, name="rating", allow_head=False)
    router.add_route("HEAD", "/rate/{token}", rating.rating_head)
    router.add_post("/rate/{token}", rating.rating_submit)
    router.add_post("/requests/start", start.start_request)


def add_help_routes(router: web.UrlDispatcher) -> None:
    """The help center, open to visitors: categories, articles, search and suggestions."""
    router.add_get("/help", help_center.help_index, name="help")
    router.add_get("/help/search", help_center.help_search, name="help_search")
    router.add_get("/help/suggest", help_center.help_suggest, name="help_suggest")
    router.add_get("/help/categories/{slug}", help_center.help_category, name="help_category")
    router.add_get("/help/articles/{slug}", help_center.help_article, name="help_article")
