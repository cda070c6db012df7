"""Which address a portal request comes from, as per-IP limits and the audit log see it.

The direct peer is the client unless it is one of `WICKET_TRUSTED_PROXIES`; only then is
the forwarding header the proxy writes (`WICKET_TRUSTED_PROXY_HEADER`: `X-Forwarded-For`,
or RFC 7239 `Forwarded`) read, from the right, skipping hops that are trusted proxies
themselves: the first other hop is the address the last trusted proxy saw, which a client
cannot choose (anything a client sends in that header stands further left). IPv4 addresses
seen through a dual-stack socket (`::ffff:a.b.c.d`) count as the IPv4 address.
`untrusted_forwarding_warning` logs once per application when forwarding headers arrive
from a peer that is not trusted: behind such a proxy every client shares its address.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import cache

from aiohttp import web
from aiohttp.typedefs import Middleware

from portal import keys

log = logging.getLogger(__name__)

FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@cache
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def parse_ip(value: str) -> IpAddress | None:
    """An address as proxies write it (`a.b.c.d`, `a.b.c.d:port`, `[v6]`, `[v6]:port`, `v6`)."""
    text = value.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IpAddress | None, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def _hops(request: web.Request, header: str) -> list[str]:
    """The addresses the forwarding header lists, nearest the client first."""
    if header.lower() == "forwarded":
        return [element["for"] for element in request.forwarded if "for" in element]
    return [hop.strip() for value in request.headers.getall("X-Forwarded-For", ()) for hop in value.split(",")]


def client_ip(request: web.Request) -> str:
    """The client's address: the peer, or behind a trusted proxy the hop that proxy saw."""
    peer = request.remote or "unknown"
    settings = request.app[keys.SETTINGS]
    networks = _networks(tuple(settings.trusted_proxies))
    peer_address = parse_ip(peer)
    if not networks or not _trusted(peer_address, networks):
        return str(peer_address or peer)
    hops = [hop for hop in _hops(request, settings.trusted_proxy_header) if hop]
    for hop in reversed(hops):
        address = parse_ip(hop)
        if not _trusted(address, networks):
            return str(address) if address is not None else hop[:64]
    # every hop is a trusted proxy (an internal client): the one furthest from us
    first = parse_ip(hops[0]) if hops else None
    return str(first or peer_address)


def untrusted_forwarding_warning() -> Middleware:
    """A middleware that reports, once, forwarding headers from a peer that is not trusted."""
    warned = False

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal warned
        if not warned:
            sent = [name for name in FORWARDING_HEADERS if name in request.headers]
            if sent:
                networks = _networks(tuple(request.app[keys.SETTINGS].trusted_proxies))
                if not _trusted(parse_ip(request.remote or ""), networks):
                    warned = True
                    log.warning(
                        "a request from %s carries %s, but WICKET_TRUSTED_PROXIES does not include %s: "
                        "if a reverse proxy sends it, every client shares that proxy's address for the "
                        "per-IP limits (see docs/deploy.md)",
                        request.remote, ", ".join(sent), request.remote,
                    )  # fmt: skip
        return await handler(request)

    return middleware
