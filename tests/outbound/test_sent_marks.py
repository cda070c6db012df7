"""Marking sent rows: a row waits for its mark at most the linger and the commit before it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.outbound import sent_marks
from gateway.outbound.sent_marks import SentMarks


class SlowCommits:
    """A database whose every write takes `seconds`; keeps when each began and what it marked."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.began: list[float] = []
        self.marked: list[list[str]] = []

    async def write(self, work: Any) -> None:
        self.began.append(asyncio.get_running_loop().time())
        await asyncio.sleep(self.seconds)
        session: list[str] = []
        work(session)
        self.marked.append(session)


async def test_a_row_sent_during_a_commit_lingers_from_its_send_not_from_that_commit_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sent_marks, "SENT_MARK_LINGER_SECONDS", 0.4)
    db = SlowCommits(0.4)
    marks = SentMarks(db, lambda session, row: session.append(row))  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    marks.add("a")  # type: ignore[arg-type]
    await asyncio.sleep(0.5)  # a's commit runs from 0.4 s to 0.8 s
    b_sent = loop.time()
    marks.add("b")  # type: ignore[arg-type]
    await asyncio.sleep(1.0)
    await marks.flush()
    assert db.marked == [["a"], ["b"]]
    # b's commit starts when a's ends and b's own linger is over (0.9 s), not a linger after a's end (1.2 s)
    assert db.began[1] - b_sent < 0.55, db.began[1] - b_sent
