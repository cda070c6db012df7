"""SQLite's WAL is checkpointed by a thread of its own, not by whichever commit crosses 1,000 pages."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from gateway.settings import Settings
from gateway.storage.database import WalCheckpointer, create_engine

ROWS = 1_500  # about 1,500 pages: past SQLite's default autocheckpoint of 1,000


async def test_commits_leave_checkpoints_to_the_checkpointer(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "checkpointed.db"
    url = make_url(f"sqlite+aiosqlite:///{path}")
    engine = create_engine(settings, url)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE note (body TEXT)"))
        mode = await connection.scalar(text("PRAGMA wal_autocheckpoint"))
    assert mode == 10_000  # a commit checkpoints only as a backstop
    before = path.stat().st_size
    async with engine.begin() as connection:
        for _ in range(ROWS):
            await connection.execute(text("INSERT INTO note VALUES (:body)"), {"body": "x" * 4000})
    assert path.stat().st_size == before  # the commit copied nothing back

    checkpointer = WalCheckpointer(url, interval=0.05)
    try:
        for _ in range(100):
            if path.stat().st_size > before + ROWS * 4000:
                break
            await asyncio.sleep(0.05)
    finally:
        checkpointer.close()
    await engine.dispose()
    assert path.stat().st_size > before + ROWS * 4000  # the checkpointer copied the pages in
