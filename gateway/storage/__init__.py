"""Storage: the database as a database, apart from the domain data kept in it.

This package will own the engines (one reader and one writer per SQLite file), the one
leased queue and the schema migrations. Today it holds the Alembic migrations
(`migrations/`: `env.py`, `script.py.mako`, `versions/`), shipped in the wheel as package
data and found next to this file, so `wicket db upgrade` works from any directory without
a checkout or an `alembic.ini`. The engines and the queue move here with the rest of the
package layout.
"""
