"""DMARC: whether the From domain vouches for a message, given its SPF and DKIM verdicts.

Policy discovery and identifier alignment as RFC 7489 section 6 describes them: the record
at `_dmarc.<From domain>`, else at `_dmarc.<organizational domain>` (whose `sp=` then
applies); the organizational domain comes from the Public Suffix List (publicsuffixlist).
The message passes when an SPF pass for the MAIL FROM domain or a DKIM pass is aligned with
the From domain: the same organizational domain under relaxed alignment (the default),
the very same domain under strict (`aspf=s`, `adkim=s`). No record means `none`; two
records, or one without a valid `p=`, mean `none` as well (section 6.6.3); a DNS failure
means `temperror`.

A message with several From domains is judged by the worst of them, so a second From
cannot hide a failing first one (section 6.6.1).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from publicsuffixlist import PublicSuffixList

from gateway.mail.verdicts import DkimVerdict, DmarcVerdict, SpfVerdict

TxtLookup = Callable[[str], tuple[bytes, ...]]  # raises on a temporary DNS failure
POLICIES = ("none", "quarantine", "reject")
# Which verdict decides for a message with several From domains: the first present in this order.
_WORST_FIRST = ("fail", "temperror", "permerror", "none", "pass")


_suffixes: PublicSuffixList | None = None
_reading = threading.Lock()  # the checks' threads: the list is read once, not once per thread


def _public_suffixes() -> PublicSuffixList:
    """The list shipped with the package (no download), read once per process.

    Reading it takes about half a second, so a processing node reads it when it starts
    (`SenderChecks.warm_up`) rather than with the first message's checks.
    """
    global _suffixes
    if _suffixes is None:
        with _reading:
            if _suffixes is None:
                _suffixes = PublicSuffixList()
    return _suffixes


def organizational_domain(domain: str) -> str:
    return _public_suffixes().privatesuffix(domain) or domain


def _aligned(identifier: str, from_domain: str, mode: str) -> bool:
    identifier = identifier.lower().rstrip(".")
    if mode == "s":
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)


def _tags(record: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), value.strip())
    return tags


def _record(txt: TxtLookup, domain: str) -> dict[str, str] | None:
    """The DMARC record published for `domain`: None for none (or two, which count as none)."""
    records = [
        value.decode("utf-8", "replace") for value in txt(f"_dmarc.{domain}")
        if value.replace(b" ", b"").lower().startswith(b"v=dmarc1")
    ]  # fmt: skip
    if len(records) != 1:
        return None
    tags = _tags(records[0])
    return tags if tags.get("p", "").lower() in POLICIES else None


def evaluate_domain(from_domain: str, spf: SpfVerdict, dkim: Iterable[DkimVerdict], txt: TxtLookup) -> DmarcVerdict:
    """The DMARC verdict for one From domain (the lookup may raise: the caller maps it to temperror)."""
    from_domain = from_domain.lower().rstrip(".")
    record = _record(txt, from_domain)
    policy_tag = "p"
    if record is None:
        organizational = organizational_domain(from_domain)
        if organizational != from_domain:
            record = _record(txt, organizational)
            policy_tag = "sp"
    if record is None:
        return DmarcVerdict("none", from_domain)
    policy = record.get(policy_tag, "").lower()
    policy = policy if policy in POLICIES else record["p"].lower()
    aligned: list[str] = []
    if spf.result == "pass" and spf.scope == "mailfrom" and _aligned(spf.domain, from_domain, record.get("aspf", "r")):
        aligned.append("spf")
    if any(d.result == "pass" and _aligned(d.domain, from_domain, record.get("adkim", "r")) for d in dkim):
        aligned.append("dkim")
    return DmarcVerdict("pass" if aligned else "fail", from_domain, policy, tuple(aligned))


def evaluate(
    from_domains: Iterable[str], spf: SpfVerdict, dkim: Iterable[DkimVerdict], txt: TxtLookup,
    is_temporary: Callable[[Exception], bool],
) -> DmarcVerdict:
    """The DMARC verdict of a message: per From domain, then the worst of them."""
    dkim = tuple(dkim)
    verdicts: list[DmarcVerdict] = []
    for domain in dict.fromkeys(from_domains):
        if not domain:
            verdicts.append(DmarcVerdict("permerror"))
            continue
        try:
            verdicts.append(evaluate_domain(domain, spf, dkim, txt))
        except Exception as error:
            if not is_temporary(error):
                raise
            verdicts.append(DmarcVerdict("temperror", domain))
    if not verdicts:
        return DmarcVerdict("none")
    return min(verdicts, key=lambda v: _WORST_FIRST.index(v.result))
