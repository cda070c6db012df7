"""The SMTP listener: an aiosmtpd handler that refuses early and acknowledges only what is stored.

`RCPT TO` is checked against the routing table (550 5.1.1 for anything else, so Wicket is
never an open relay) and the recipient limit; `SIZE` is advertised and enforced; `DATA`
hands the raw bytes, envelope and peer to the group-committing store and answers 250 only
after the commit, or 451 4.3.0 when the database could not take it. The hooks hold no SQL
and no business logic. No AUTH is offered (not in EHLO, not in HELP, and the command
answers 502): the listener only receives mail for its own mailboxes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import ssl
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from gateway.inbound.routing import Router
from gateway.inbound.store import InboundStore, IncomingMail, StoreUnavailable
from gateway.metrics import SMTP_REPLIES
from gateway.settings import Settings
from gateway.storage.database import Database

log = logging.getLogger(__name__)

REPLY_UNKNOWN_RECIPIENT = "550 5.1.1 No such mailbox here"
REPLY_TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
REPLY_TOO_BIG = "552 5.3.4 Message exceeds the maximum size"
REPLY_TRY_LATER = "451 4.3.0 Temporary storage failure, please retry later"
REPLY_ERROR = "451 4.3.0 Temporary failure, please retry later"

# aiosmtpd's own replies to an oversized or long-lined DATA, given enhanced status codes
# (RFC 3463). smtp_DATA pushes them itself after reading the data, with no hook or attribute
# to change them, so `push` swaps them by their exact text; tests/inbound/
# test_aiosmtpd_overrides.py pins that text against stock aiosmtpd, so an upgrade that
# rewords them fails there rather than silently losing the enhanced codes.
_REWRITES = {
    "552 Error: Too much mail data": REPLY_TOO_BIG,
    "500 Line too long (see RFC5321 4.5.3.1.6)": "500 5.5.2 Line too long",
}


# `<local@domain>` with dot-atom local part and domain, then the parameters (RFC 5321 4.1.2).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH = re.compile(rf"<((?:{_ATOM}\.)*{_ATOM}@(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+)>[ \t]*+(?!\()(.*)", re.DOTALL)


def _counted(stage: str, reply: str) -> str:
    SMTP_REPLIES.labels(stage, reply[:3]).inc()
    return reply


class WicketHandler:
    """aiosmtpd hooks: EHLO without AUTH, RCPT policy and durable DATA."""

    def __init__(self, db: Database, router: Router, store: InboundStore, settings: Settings) -> None:
        self._db = db
        self._router = router
        self._store = store
        self._max_recipients = settings.max_recipients

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        # aiosmtpd advertises AUTH once the session is encrypted (its mechanisms are all
        # excluded, but the keyword stays); Wicket offers none. With this hook aiosmtpd
        # leaves recording the client's name to the handler.
        session.host_name = hostname
        return [line for line in responses if not line.startswith("250-AUTH")]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self._max_recipients:
            return _counted("rcpt", REPLY_TOO_MANY_RECIPIENTS)
        # A known address costs no read; a miss reads the table afresh (at most once a second).
        known = self._router.accepted(address)
        if not known and not await self._db.read(functools.partial(self._router.accepts, address=address)):
            return _counted("rcpt", REPLY_UNKNOWN_RECIPIENT)
        envelope.rcpt_tos.append(address)
        return _counted("rcpt", "250 2.1.5 OK")

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        peer = session.peer
        mail = IncomingMail(
            raw=bytes(envelope.original_content or b""),
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            peer=f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer),
            helo=session.host_name or "",
        )
        try:
            row_id = await self._store.save(mail)
        except StoreUnavailable:
            return _counted("data", REPLY_TRY_LATER)
        return _counted("data", f"250 2.0.0 Queued as {row_id}")

    async def handle_exception(self, error: Exception) -> str:
        log.exception("SMTP session error", exc_info=error)
        return REPLY_ERROR


class WicketSMTP(SMTP):
    """aiosmtpd's protocol with enhanced status codes, long lines accepted and plain paths read fast."""

    # Real mail carries header lines far beyond RFC 5321's 1000; the size limit still applies.
    line_length_limit = 1024 * 1024
    # HELP lists a command only while the attribute its `syntax(when=...)` names is true.
    offers_auth = False

    @syntax("AUTH <mechanism>", when="offers_auth")
    async def smtp_AUTH(self, arg: str) -> None:
        await self.push("502 5.5.1 AUTH is not offered here")

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd parses every MAIL and RCPT path with the email package's header parser
        # (about 70 µs each); the plain form nearly all mail uses is read here with the same
        # result, anything else (quoted, literal, non-ASCII, comments) still goes to it.
        plain = _PLAIN_PATH.fullmatch(arg)
        if plain is None or (self.local_part_limit and plain[1].index("@") > self.local_part_limit):
            return super()._getaddr(arg)
        return plain[1], plain[2]

    def __dir__(self) -> list[str]:
        # aiosmtpd's __init__ looks for its auth_* mechanisms and smtp_* verbs by walking
        # dir(self) (once through inspect.getmembers) for every connection, about 110 µs of
        # each; they are methods of the class, so the names are listed once per class.
        return _protocol_names(type(self))

    async def push(self, status: str) -> None:
        if status in _REWRITES:
            status = _counted("data", _REWRITES[status])
        await super().push(status)
        if status[3:4] != "-":
            # A client that pipelines thousands of commands would otherwise be
            # served from its buffer without ever yielding, starving every other session (long
            # enough, under load, for their idle timeouts to cut them). One yield per reply,
            # after its last line.
            await asyncio.sleep(0)


@functools.cache
def _protocol_names(protocol: type[SMTP]) -> list[str]:
    return [name for name in dir(protocol) if name.startswith(("auth_", "smtp_"))]


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.smtp_tls_cert_file is None or settings.smtp_tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.smtp_tls_cert_file, settings.smtp_tls_key_file)
    return context


def protocol_options(settings: Settings) -> dict[str, Any]:
    """The aiosmtpd constructor options of the listener (also what its override tests give stock aiosmtpd)."""
    return {
        "hostname": settings.smtp_hostname,
        "data_size_limit": settings.max_message_size,
        "timeout": settings.smtp_idle_timeout,
        "tls_context": _tls_context(settings),
        "require_starttls": False,
        "enable_SMTPUTF8": True,
        "auth_exclude_mechanism": ["LOGIN", "PLAIN"],
        "ident": "Wicket ESMTP",
    }


async def start_smtp_server(
    settings: Settings, handler: WicketHandler, *, host: str | None = None, port: int | None = None,
    **server_options: Any,
) -> asyncio.Server:
    """Serve SMTP on the running loop (the same loop as the database engine)."""
    options = protocol_options(settings)

    def protocol() -> WicketSMTP:
        return WicketSMTP(handler, **options)

    return await asyncio.get_running_loop().create_server(
        protocol,
        host=host or settings.smtp_host,
        port=settings.smtp_port if port is None else port,
        **server_options,
    )
