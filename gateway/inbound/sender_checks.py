"""Sender checks: SPF, DKIM, ARC and DMARC for one stored message, through the one resolver.

`SenderChecks.check` computes a message's `SenderVerdicts` (gateway/mail/verdicts.py) from
its raw bytes and the envelope the SMTP listener kept (connecting IP, HELO name, MAIL
FROM). SPF is pyspf's evaluation against the connecting IP and the MAIL FROM domain (the
HELO name for the null sender); DKIM and ARC are dkimpy's verification of each signature
and of the chain; DMARC is gateway/inbound/dmarc.py over those results. Every DNS lookup
goes through the `Resolver` given (gateway/inbound/dns.py): pyspf's module-level lookup
function is pointed at the resolver of the check running in the current thread, and
dkimpy takes a lookup function per call.

The checks run on a small thread pool, off the event loop and outside any database
transaction, with a time budget per message: a message whose checks do not finish in time,
or hit a DNS failure, gets `temperror`, never an exception (docs/architecture.md, "Sender
verdicts"). Mail without a connecting IP (a replayed file) gets SPF `none`.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import logging
import re
from concurrent.futures import Future, ThreadPoolExecutor

import dkim
import spf

from gateway.inbound import dmarc
from gateway.inbound.dns import DnsTemporaryError, Resolver
from gateway.mail.verdicts import ArcVerdict, DkimVerdict, SenderVerdicts, SpfVerdict, all_temperror

log = logging.getLogger(__name__)

MAX_SIGNATURES = 5  # DKIM signatures verified per message; more are ignored (each costs a lookup)
THREADS = 8  # checks waiting on DNS at once

# dkimpy logs every failed signature at error level; the verdict keeps the reason instead.
_DKIMPY_LOG = logging.getLogger(__name__ + ".dkimpy")
_DKIMPY_LOG.setLevel(logging.CRITICAL)

_RESOLVER: contextvars.ContextVar[Resolver] = contextvars.ContextVar("sender_checks_resolver")


def _spf_lookup(name: str, qtype: str, strict: bool = True, timeout: float = 0) -> list[tuple[tuple[str, str], object]]:
    """pyspf's lookup function (its documented seam, `spf.DNSLookup`), answered by our resolver."""
    if qtype == "SPF":  # the retired SPF record type: never published any more, never asked
        return []
    try:
        answers = _RESOLVER.get().lookup(name, qtype)
    except DnsTemporaryError as error:
        raise spf.TempError(f"DNS {error}") from error
    # pyspf joins a TXT record's strings itself, so each record is handed over as one string.
    return [((name, qtype), (value,) if qtype == "TXT" else value) for value in answers]


spf.DNSLookup = _spf_lookup


class _DkimKeys:
    """dkimpy's lookup function for one message; remembers why a key could not be had."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver
        self.temporary = False

    def __call__(self, name: bytes, timeout: float = 5) -> bytes | None:
        self.temporary = False
        try:
            answers = self._resolver.lookup(name.decode("ascii", "replace"), "TXT")
        except DnsTemporaryError as error:
            self.temporary = True
            raise dkim.DnsTimeoutError(str(error)) from error
        return next((value for value in answers if isinstance(value, bytes)), None)


def connecting_ip(peer: str) -> str | None:
    """The IP address of a stored peer (`203.0.113.5:41234`, `::1:41234`), or None (`local`)."""
    host = peer.rsplit(":", 1)[0].strip("[]") if ":" in peer else peer
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def check_spf(ip: str | None, mail_from: str, helo: str) -> SpfVerdict:
    scope = "mailfrom" if mail_from else "helo"
    domain = mail_from.rpartition("@")[2].lower() if mail_from else helo.lower()
    if ip is None:
        return SpfVerdict("none", domain, scope, "no connecting IP address (not received over SMTP)")
    if not domain:
        return SpfVerdict("none", "", scope, "neither a MAIL FROM domain nor a HELO name")
    try:
        query = spf.query(i=ip, s=mail_from or f"postmaster@{helo}", h=helo or domain, querytime=0)
        result, _code, explanation = query.check()
    except Exception as error:  # noqa: BLE001 - a malformed envelope is the sender's error, not ours
        return SpfVerdict("permerror", domain, scope, f"{type(error).__name__}: {error}"[:200])
    return SpfVerdict(result, domain, scope, str(explanation)[:200])


def header_block(raw: bytes) -> bytes:
    """The message's header block (a slice: the body is never searched or copied)."""
    end = raw.find(b"\r\n\r\n")
    bare = raw.find(b"\n\n", 0, end if end >= 0 else len(raw))
    if bare >= 0:
        return raw[:bare]
    return raw[:end] if end >= 0 else raw


def _has_header(lowered_head: bytes, name: bytes) -> bool:
    """Whether a header field `name` (lowercase, with its colon) is in the lowercased header block."""
    return lowered_head.startswith(name) or b"\n" + name in lowered_head


def check_dkim(raw: bytes, resolver: Resolver, head: bytes) -> tuple[DkimVerdict, ...]:
    if not _has_header(head, b"dkim-signature:"):
        return ()
    keys = _DkimKeys(resolver)
    try:
        verifier = dkim.DKIM(raw, logger=_DKIMPY_LOG)
    except dkim.DKIMException as error:
        return (DkimVerdict("permerror", reason=str(error)[:200]),)
    count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    return tuple(_verify_signature(verifier, index, keys) for index in range(min(count, MAX_SIGNATURES)))


def _verify_signature(verifier: dkim.DKIM, index: int, keys: _DkimKeys) -> DkimVerdict:
    verifier.signature_fields = {}
    try:
        valid, reason = verifier.verify(index, dnsfunc=keys), ""
    except dkim.DKIMException as error:
        # A body that changed fails the signature; a signature that cannot be read is an error.
        valid, reason = False, str(error)[:200]
        if not reason.startswith("body hash mismatch"):
            return DkimVerdict("permerror", *_signer(verifier), reason=reason)
    domain, selector = _signer(verifier)
    if valid:
        return DkimVerdict("pass", domain, selector)
    if keys.temporary:
        return DkimVerdict("temperror", domain, selector, "the key could not be looked up")
    return DkimVerdict("fail", domain, selector, reason or "the signature did not verify with the published key")


def _signer(verifier: dkim.DKIM) -> tuple[str, str]:
    fields = verifier.signature_fields or {}
    return fields.get(b"d", b"").decode("ascii", "replace").lower(), fields.get(b"s", b"").decode("ascii", "replace")


def check_arc(raw: bytes, resolver: Resolver, head: bytes) -> ArcVerdict:
    if not _has_header(head, b"arc-seal:"):
        return ArcVerdict()
    keys = _DkimKeys(resolver)
    try:
        result, _, reason = dkim.ARC(raw, logger=_DKIMPY_LOG).verify(dnsfunc=keys)
    except dkim.DKIMException as error:
        return ArcVerdict("permerror", str(error)[:200])
    if keys.temporary:
        return ArcVerdict("temperror", "a key could not be looked up")
    words = {dkim.CV_Pass: "pass", dkim.CV_Fail: "fail", dkim.CV_None: "none"}
    return ArcVerdict(words.get(result, "fail"), "" if result == dkim.CV_Pass else str(reason)[:200])


_QUOTED_OR_COMMENT = re.compile(r'"(?:[^"\\]|\\.)*"|\((?:[^()\\]|\\.)*\)')
_ADDRESS_DOMAIN = re.compile(r"@([^\s<>,;:@\"()\[\]]*)")


def _field_values(head: bytes, lowered_head: bytes, name: bytes) -> list[bytes]:
    """Every value of the header field `name` (lowercase, with its colon), continuation lines included."""
    starts = [0] if lowered_head.startswith(name) else []
    found = lowered_head.find(b"\n" + name)
    while found >= 0:
        starts.append(found + 1)
        found = lowered_head.find(b"\n" + name, found + 1)
    values = []
    for start in starts:
        end = head.find(b"\n", start)
        while end >= 0 and head[end + 1 : end + 2] in (b" ", b"\t"):
            end = head.find(b"\n", end + 1)
        values.append(head[start + len(name) : end if end >= 0 else len(head)])
    return values


def from_domains(head: bytes, lowered_head: bytes) -> list[str]:
    """The domain of every address in the From header(s); "" when From has an address without one.

    Read from the header block by plain searches rather than a full header parse, which
    would cost more than the checks themselves: display names and comments are dropped
    first, so an `@` inside them names no domain.
    """
    domains: list[str] = []
    for raw_value in _field_values(head, lowered_head, b"from:"):
        value = _QUOTED_OR_COMMENT.sub(" ", raw_value.decode("utf-8", "replace"))
        found = [domain.lower().rstrip(".") for domain in _ADDRESS_DOMAIN.findall(value)]
        domains.extend(found or ([""] if value.strip() else []))
    return domains


def evaluate(raw: bytes, peer: str, helo: str, mail_from: str, resolver: Resolver) -> SenderVerdicts:
    """Every check, synchronously (run on the checks' thread pool)."""
    token = _RESOLVER.set(resolver)
    try:
        head = header_block(raw)
        spf_verdict = check_spf(connecting_ip(peer), mail_from, helo)
        lowered = head.lower()
        dkim_verdicts = check_dkim(raw, resolver, lowered)

        def txt(name: str) -> tuple[bytes, ...]:
            return tuple(v for v in resolver.lookup(name, "TXT") if isinstance(v, bytes))

        dmarc_verdict = dmarc.evaluate(
            from_domains(head, lowered), spf_verdict, dkim_verdicts, txt, lambda e: isinstance(e, DnsTemporaryError)
        )
        return SenderVerdicts(spf_verdict, dkim_verdicts, dmarc_verdict, check_arc(raw, resolver, lowered))
    finally:
        _RESOLVER.reset(token)


class SenderChecks:
    """The checks with their resolver, thread pool and time budget; one per Processor."""

    def __init__(self, resolver: Resolver, timeout: float) -> None:
        self.resolver = resolver
        self._timeout = timeout
        self._pool: ThreadPoolExecutor | None = None

    def _threads(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="sender-checks")
        return self._pool

    def warm_up(self) -> Future[object]:
        """Read what the checks load once (the Public Suffix List) on a check thread, now."""
        return self._threads().submit(dmarc.organizational_domain, "example.com")

    async def check(self, raw: bytes, *, peer: str, helo: str, mail_from: str) -> SenderVerdicts:
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._threads(), evaluate, raw, peer, helo, mail_from, self.resolver)
        try:
            return await asyncio.wait_for(work, self._timeout)
        except TimeoutError:
            log.warning("sender checks took longer than %.1fs: temperror", self._timeout)
            return all_temperror(f"the checks took longer than {self._timeout:g}s")
        except Exception as error:  # noqa: BLE001 - a bug in a check must not hold the mail back
            log.exception("sender checks failed")
            return all_temperror(f"the checks failed: {type(error).__name__}")

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
