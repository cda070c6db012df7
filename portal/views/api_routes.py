"""The agent API's routes: list, add and remove the routes that make tickets in the agent's mailboxes.

An agent may route an address of their own mailbox's domain into that mailbox (exact or
plus), optionally also posting each message to a webhook endpoint the operator made;
domain and catch-all routes, and anything that would take another mailbox's mail, stay
with the operator (`wicket routes add`). The checks are gateway/inbound/route_admin.py's,
the same the command line runs; a node picks up a change within a second.
"""

from __future__ import annotations

from aiohttp import web

from gateway.inbound.route_admin import (
    RouteError,
    RouteNotFound,
    RouteRefused,
    RouteSpec,
    RouteView,
    add_route,
    check_agent_route,
    list_routes,
    remove_route,
)
from gateway.models import PayloadFormat, RouteMatch
from portal import keys
from portal.views.api_http import ApiFailure, api_view, authenticate, ok, read_body
from portal.views.api_route_schema import RouteOut, RoutePage, RouteRequest


def _out(view: RouteView) -> RouteOut:
    return RouteOut(id=view.id, priority=view.priority, match=view.match, pattern=view.pattern, header=view.header,
                    mailbox=view.mailbox, webhook=view.webhook, payload_format=view.payload_format, stop=view.stop)  # fmt: skip


def _view(routes: list[RouteView], route_id: str) -> RouteView:
    return next(view for view in routes if view.id == route_id)


@api_view
async def get_routes(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)
    found = await request.app[keys.DB].read(lambda connection: list_routes(connection, access.mailbox_ids))
    return ok(RoutePage(routes=[_out(view) for view in found]))


@api_view
async def post_route(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)
    body = await read_body(RouteRequest, request)
    spec = RouteSpec(
        RouteMatch(body.match), body.pattern, body.header.name if body.header else None,
        body.header.contains if body.header else None, body.mailbox, True,
        body.webhook, PayloadFormat.RAW if body.raw else PayloadFormat.JSON, body.priority, body.stop,
    )  # fmt: skip

    def add(session) -> str:  # type: ignore[no-untyped-def]
        check_agent_route(session, spec, access.mailbox_ids)
        return add_route(session, spec).public_id

    db = request.app[keys.DB]
    try:
        route_id = await db.write(add)
    except RouteRefused as error:
        raise ApiFailure(403, str(error)) from None
    except RouteNotFound as error:
        raise ApiFailure(404, str(error)) from None
    except RouteError as error:
        raise ApiFailure(400, str(error)) from None
    found = await db.read(lambda connection: list_routes(connection, access.mailbox_ids))
    return ok(_out(_view(found, route_id)), status=201)


@api_view
async def delete_route(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)
    route_id = request.match_info["route_id"]
    db = request.app[keys.DB]
    found = await db.read(lambda connection: list_routes(connection, access.mailbox_ids))
    try:
        await db.write(lambda session: remove_route(session, route_id, access.mailbox_ids))
    except RouteNotFound:
        raise ApiFailure(404, "no such route making tickets in your mailboxes") from None
    return ok(_out(_view(found, route_id)))


def add_api_route_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/v1/routes", get_routes, name="api_routes")
    router.add_post("/api/v1/routes", post_route)
    router.add_delete("/api/v1/routes/{route_id}", delete_route, name="api_route")
