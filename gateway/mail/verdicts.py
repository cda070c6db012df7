"""Sender verdicts: what SPF, DKIM, DMARC and ARC said about an inbound message, as a value.

The processor computes them (gateway/inbound/sender_checks.py) and stores them on the
message as one JSON value, `message.sender_verdicts`; notifications, `wicket tickets show`,
the agent API and webhooks read them back through `SenderVerdicts.from_json`. NULL means
the message was never checked (the portal's own submissions, agent replies, mail stored
before the checks existed). The stored shape, documented in docs/architecture.md
("Sender verdicts"):

    {"spf":   {"result": "pass", "domain": "customer.test", "scope": "mailfrom", "reason": "..."},
     "dkim":  [{"result": "pass", "domain": "customer.test", "selector": "s1", "reason": ""}],
     "dmarc": {"result": "pass", "domain": "customer.test", "policy": "reject", "aligned": ["spf", "dkim"]},
     "arc":   {"result": "none", "reason": ""}}

Results use the words of Authentication-Results (RFC 8601): pass, fail, softfail (SPF),
neutral (SPF), none, temperror, permerror. A DNS failure is always `temperror`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")


@dataclass(frozen=True, slots=True)
class SpfVerdict:
    result: str = "none"
    domain: str = ""  # the domain whose record was checked: the MAIL FROM's, else the HELO name
    scope: str = "mailfrom"  # "mailfrom" or "helo" (for the null sender of bounces)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DkimVerdict:
    result: str
    domain: str = ""  # the signature's d=
    selector: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DmarcVerdict:
    result: str = "none"
    domain: str = ""  # the From header's domain
    policy: str | None = None  # p= (or sp= for a subdomain) of the record that applied
    aligned: tuple[str, ...] = ()  # which passing mechanisms were aligned with the From domain


@dataclass(frozen=True, slots=True)
class ArcVerdict:
    result: str = "none"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SenderVerdicts:
    spf: SpfVerdict = field(default_factory=SpfVerdict)
    dkim: tuple[DkimVerdict, ...] = ()
    dmarc: DmarcVerdict = field(default_factory=DmarcVerdict)
    arc: ArcVerdict = field(default_factory=ArcVerdict)

    @property
    def dmarc_failed(self) -> bool:
        """The From domain publishes DMARC and neither SPF nor DKIM vouched for it, aligned."""
        return self.dmarc.result == "fail"

    def summary(self) -> str:
        """One short line for people: `SPF pass · DKIM pass (customer.test) · DMARC pass`."""
        dkim = ", ".join(f"{d.result} ({d.domain})" if d.domain else d.result for d in self.dkim) or "none"
        dmarc = self.dmarc.result + (f" (p={self.dmarc.policy})" if self.dmarc.policy else "")
        parts = [f"SPF {self.spf.result}", f"DKIM {dkim}", f"DMARC {dmarc}"]
        if self.arc.result != "none":
            parts.append(f"ARC {self.arc.result}")
        return " · ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "spf": {"result": self.spf.result, "domain": self.spf.domain, "scope": self.spf.scope,
                    "reason": self.spf.reason},
            "dkim": [{"result": d.result, "domain": d.domain, "selector": d.selector, "reason": d.reason}
                     for d in self.dkim],
            "dmarc": {"result": self.dmarc.result, "domain": self.dmarc.domain, "policy": self.dmarc.policy,
                      "aligned": list(self.dmarc.aligned)},
            "arc": {"result": self.arc.result, "reason": self.arc.reason},
        }  # fmt: skip

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> SenderVerdicts | None:
        if not value:
            return None
        dmarc = dict(value.get("dmarc") or {})
        dmarc["aligned"] = tuple(dmarc.get("aligned") or ())
        return cls(
            spf=SpfVerdict(**(value.get("spf") or {})),
            dkim=tuple(DkimVerdict(**d) for d in value.get("dkim") or ()),
            dmarc=DmarcVerdict(**dmarc),
            arc=ArcVerdict(**(value.get("arc") or {})),
        )


def all_temperror(reason: str) -> SenderVerdicts:
    """The verdicts when the checks could not finish (DNS too slow or unreachable)."""
    return SenderVerdicts(
        spf=SpfVerdict("temperror", reason=reason),
        dkim=(DkimVerdict("temperror", reason=reason),),
        dmarc=DmarcVerdict("temperror"),
        arc=ArcVerdict("temperror", reason),
    )
