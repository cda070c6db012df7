"""Test helpers shared by the suite's modules (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from gateway.models import InboundEmail

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "emails"
SUPPORT = "support@example.test"

ReceiveEmail = Callable[..., Awaitable[InboundEmail]]


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
