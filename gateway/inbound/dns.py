"""The one way Wicket asks DNS anything: a resolver object, and the fixed one tests use.

Every lookup the sender checks make (SPF, DKIM keys, DMARC records, ARC keys) goes through
a `Resolver`: `lookup(name, rdtype)` returns the answers as plain values (TXT: each record's
strings joined, as bytes; A and AAAA: address text; MX: `(preference, host)`; PTR: host
text), an empty tuple for NXDOMAIN or no answer, and raises `DnsTemporaryError` when DNS
could not say (timeout, SERVFAIL, no reachable server). The composition root
(gateway/cli/runtime.py) builds a `DnsResolver` from settings; tests build a
`FixedResolver` with the answers they need, so no test touches the network.

`DnsResolver` caches answers (and negative answers, and briefly failures) for their TTL,
bounded in size, so a backlog from a few sender domains asks DNS once per domain.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Protocol

import dns.exception
import dns.resolver

Answer = bytes | str | tuple[int, str]

RDTYPES = ("TXT", "A", "AAAA", "MX", "PTR")
CACHE_ENTRIES = 10_000
NEGATIVE_TTL = 300  # seconds an NXDOMAIN or empty answer is kept when the zone gives no TTL
FAILURE_TTL = 30  # seconds a failed lookup is remembered, so a backlog does not wait once per message
MAX_TTL = 3600


class DnsTemporaryError(Exception):
    """DNS could not answer now (timeout, SERVFAIL, no server reachable)."""


class Resolver(Protocol):
    def lookup(self, name: str, rdtype: str) -> tuple[Answer, ...]: ...


def _values(rdtype: str, answer: dns.resolver.Answer) -> tuple[Answer, ...]:
    values: list[Answer] = []
    for rdata in answer:
        if rdtype == "TXT":
            values.append(b"".join(rdata.strings))
        elif rdtype in ("A", "AAAA"):
            values.append(rdata.address)
        elif rdtype == "MX":
            values.append((int(rdata.preference), rdata.exchange.to_text(omit_final_dot=True)))
        elif rdtype == "PTR":
            values.append(rdata.target.to_text(omit_final_dot=True))
    return tuple(values)


class DnsResolver:
    """Real DNS through dnspython, with a per-process cache; safe to share between threads."""

    def __init__(self, nameservers: Iterable[str] = (), timeout: float = 3.0) -> None:
        servers = list(nameservers)
        self._resolver = dns.resolver.Resolver(configure=not servers)
        if servers:
            self._resolver.nameservers = servers
        self._resolver.lifetime = timeout
        self._cache: OrderedDict[tuple[str, str], tuple[float, tuple[Answer, ...] | None]] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, name: str, rdtype: str) -> tuple[Answer, ...]:
        key = (name.lower().rstrip("."), rdtype)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            if cached[1] is None:
                raise DnsTemporaryError(f"{rdtype} {key[0]}: failed a moment ago")
            return cached[1]
        try:
            answer = self._resolver.resolve(key[0], rdtype, raise_on_no_answer=False, search=False)
            values = _values(rdtype, answer)
            ttl = answer.rrset.ttl if answer.rrset is not None else NEGATIVE_TTL
        except dns.resolver.NXDOMAIN:
            values, ttl = (), NEGATIVE_TTL
        except (dns.exception.DNSException, OSError) as error:
            self._remember(key, now + FAILURE_TTL, None)
            raise DnsTemporaryError(f"{rdtype} {key[0]}: {type(error).__name__}") from error
        self._remember(key, now + min(ttl, MAX_TTL), values)
        return values

    def _remember(self, key: tuple[str, str], until: float, values: tuple[Answer, ...] | None) -> None:
        with self._lock:
            self._cache[key] = (until, values)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)


class FixedResolver:
    """Answers from a table: for tests, and for replaying mail with no network.

    `answers` maps `(name, rdtype)` to the values; a TXT value may be given as text. Names
    in `failing` raise `DnsTemporaryError` for every type; anything else is NXDOMAIN.
    `asked` records every lookup, in order.
    """

    def __init__(
        self,
        answers: Mapping[tuple[str, str], Iterable[Answer]] | None = None,
        failing: Iterable[str] = (),
    ) -> None:
        self.answers: dict[tuple[str, str], tuple[Answer, ...]] = {}
        self.failing = {name.lower() for name in failing}
        self.asked: list[tuple[str, str]] = []
        for (name, rdtype), values in (answers or {}).items():
            self.add(name, rdtype, *values)

    def add(self, name: str, rdtype: str, *values: Answer) -> None:
        encoded = tuple(v.encode() if rdtype == "TXT" and isinstance(v, str) else v for v in values)
        key = (name.lower().rstrip("."), rdtype)
        self.answers[key] = self.answers.get(key, ()) + encoded

    def lookup(self, name: str, rdtype: str) -> tuple[Answer, ...]:
        key = (name.lower().rstrip("."), rdtype)
        self.asked.append(key)
        if key[0] in self.failing:
            raise DnsTemporaryError(f"{rdtype} {key[0]}: no answer (fixed failure)")
        return self.answers.get(key, ())
