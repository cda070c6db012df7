"""SQLite's WAL is checkpointed by a thread of its own, not by whichever commit crosses 1,000 pages."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gateway.storage.sqlite import SqliteReader, SqliteWriter, WalCheckpointer

ROWS = 1_500  # about 1,500 pages: past SQLite's default autocheckpoint of 1,000


async def test_commits_leave_checkpoints_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "checkpointed.db"
    url = make_url(f"sqlite:///{path}")
    reader, writer = SqliteReader(url), SqliteWriter(url)  # a Database's parts, without its checkpointer
    try:
        await writer.run(lambda session: session.execute(text("CREATE TABLE note (body TEXT)")))
        mode = reader.run(lambda connection: connection.scalar(text("PRAGMA wal_autocheckpoint")))
        assert mode == 10_000  # a commit checkpoints only as a backstop
        before = path.stat().st_size

        def fill(session: Session) -> None:
            for _ in range(ROWS):
                session.execute(text("INSERT INTO note VALUES (:body)"), {"body": "x" * 4000})

        await writer.run(fill)
        assert path.stat().st_size == before  # the commit copied nothing back

        checkpointer = WalCheckpointer(reader.engine, interval=0.05)  # on a connection of the reader's engine
        try:
            for _ in range(100):
                if path.stat().st_size > before + ROWS * 4000:
                    break
                await asyncio.sleep(0.05)
        finally:
            checkpointer.close()
    finally:
        writer.close()
        reader.close()
    assert path.stat().st_size > before + ROWS * 4000  # the checkpointer copied the pages in
