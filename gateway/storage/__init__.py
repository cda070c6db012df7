"""Storage: the database as a database, apart from the domain data kept in it.

`database.py` owns the engines (PostgreSQL's pool; SQLite's reader, writer thread and
checkpointer, in `sqlite.py`) and the one way to run work on them, `read` and `write`
(docs/architecture.md, "Reaching the database"); `queue.py` is the one leased queue that
inbound processing and the outbox worker claim their rows through; `statements.py` holds
the prepared statements by name; `upsert.py` inserts if absent on both dialects. The
Alembic migrations (`migrations/`: `env.py`, `script.py.mako`, `versions/`) ship in the
wheel as package data and are found next to this file, so `wicket db upgrade` works from
any directory without a checkout. Imports nothing of
Wicket but settings.
"""
