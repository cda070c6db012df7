"""Signed reply addresses: `support+t.<ticket>.<mac>@domain` and `support+a.<ticket>.<agent>.<mac>@…`.

Outbound mail to a customer carries a `t` address in Reply-To; a notification to an agent
carries an `a` address that also names the agent. The MAC is an HMAC over the kind, the
ticket's public id, the agent and the mailbox address, truncated to 80 bits and written in
lower-case base32 so it survives mail systems that fold the case of local parts. Every
configured key is tried, so rotation does not break replies to mail already sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

from gateway.settings import SecretKey

ReplyKind = Literal["t", "a"]


@dataclass(frozen=True, slots=True)
class ReplyAddress:
    mailbox_address: str
    kind: ReplyKind
    ticket_public_id: str
    agent_id: int | None = None


def _mac(key: SecretKey, mailbox_address: str, kind: str, ticket: str, agent: str) -> str:
    message = f"reply-address|{mailbox_address}|{kind}|{ticket}|{agent}".encode()
    digest = hmac.new(key.secret, message, hashlib.sha256).digest()[:10]
    return base64.b32encode(digest).decode().lower()


def format_reply_address(address: ReplyAddress, key: SecretKey) -> str:
    local, domain = address.mailbox_address.rsplit("@", 1)
    agent = "" if address.agent_id is None else str(address.agent_id)
    mac = _mac(key, address.mailbox_address, address.kind, address.ticket_public_id, agent)
    parts = [address.kind, address.ticket_public_id] + ([agent] if agent else []) + [mac]
    return f"{local}+{'.'.join(parts)}@{domain}"


def split_plus(address: str) -> tuple[str, str | None]:
    """`support+x@d` -> (`support@d`, `x`); an address without a tag -> (address, None)."""
    local, _, domain = address.lower().rpartition("@")
    base, plus, tag = local.partition("+")
    return f"{base}@{domain}", (tag if plus else None)


def parse_reply_address(
    address: str, keys: tuple[SecretKey, ...]
) -> ReplyAddress | None:
    """The signed address's meaning, or None when it is malformed or its MAC is wrong."""
    mailbox_address, tag = split_plus(address)
    if not tag:
        return None
    parts = tag.split(".")
    if len(parts) == 3 and parts[0] == "t":
        kind, ticket, agent, mac = "t", parts[1], "", parts[2]
    elif len(parts) == 4 and parts[0] == "a" and parts[2].isdigit():
        kind, ticket, agent, mac = "a", parts[1], parts[2], parts[3]
    else:
        return None
    for key in keys:
        if hmac.compare_digest(_mac(key, mailbox_address, kind, ticket, agent), mac):
            return ReplyAddress(mailbox_address, kind, ticket, int(agent) if agent else None)
    return None
