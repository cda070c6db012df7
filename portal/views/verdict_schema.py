"""The sender verdicts' shape in the agent API and in webhooks (gateway/mail/verdicts.py stores it).

One set of models for both documents, so `message.received` and a ticket's messages
describe SPF, DKIM, DMARC and ARC in the same words.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Result = Literal["pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"]


class SpfVerdict(BaseModel):
    result: Result
    domain: str = Field(description="The MAIL FROM domain checked (the HELO name for the null sender).")
    scope: Literal["mailfrom", "helo"]
    reason: str


class DkimVerdict(BaseModel):
    result: Result
    domain: str = Field(description="The signature's d= domain.")
    selector: str
    reason: str


class DmarcVerdict(BaseModel):
    result: Result
    domain: str = Field(description="The From header's domain.")
    policy: Literal["none", "quarantine", "reject"] | None = Field(description="The policy that applied, if a record did.")
    aligned: list[Literal["spf", "dkim"]] = Field(description="The passing mechanisms aligned with the From domain.")


class ArcVerdict(BaseModel):
    result: Result
    reason: str


class SenderVerdicts(BaseModel):
    """What SPF, DKIM, DMARC and ARC said about an inbound message when it arrived."""

    spf: SpfVerdict
    dkim: list[DkimVerdict] = Field(description="One per DKIM-Signature (at most five); empty when unsigned.")
    dmarc: DmarcVerdict
    arc: ArcVerdict
