"""How plain `wicket serve` keeps its rate as the stored mail grows (`python -m bench.scale`).

Not a row of `bench/run`: a tool for finding what slows a node down as its tables grow.
A backlog of corpus messages is stored pending in a fresh database made the way the
node benchmarks make one (`wicket db upgrade`, a mailbox, an agent), then plain `wicket
serve` is started over it, as the README says. Every 10 s it prints how many inbound
messages are finished, the rate since the last line and the outbox by status (it looks
every second, so the end is seen within one). At the end it prints the whole drain's
rate, the node's CPU time, PostgreSQL's (every server process, read before the node
stops) and how many of the machine's cores were busy on average. On PostgreSQL it also
samples `pg_stat_activity` five times a second and prints the statements found running
most often, with what they waited on: a statement whose share grows with the stored rows
is one whose cost does.

    python -m bench.scale postgres 20000
    python -m bench.scale sqlite 20000 -- --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import threading
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.node import (
    Node,
    NodeDatabase,
    counts,
    drained,
    finished,
    fresh_node_database,
    machine_busy,
    postgres_cpu_seconds,
)
from bench.procs import OUT, run_job

SAMPLE_SECONDS = 0.2
_ACTIVE = text(
    "SELECT query, coalesce(wait_event_type, 'cpu') FROM pg_stat_activity"
    " WHERE state = 'active' AND pid <> pg_backend_pid() AND datname = current_database()"
)


class Sampler:
    """Counts the statements running in the node's database, on a thread of its own."""

    def __init__(self, url: str) -> None:
        self.seen: collections.Counter[tuple[str, str]] = collections.Counter()
        self.samples = 0
        self._url = url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._sample(),))

    async def _sample(self) -> None:
        engine = create_async_engine(self._url)
        try:
            async with engine.connect() as connection:
                while not self._stop.is_set():
                    for query, waiting in await connection.execute(_ACTIVE):
                        self.seen[" ".join(query.split())[:100], waiting] += 1
                    self.samples += 1
                    await connection.commit()  # pg_stat_activity is read once per transaction
                    await asyncio.sleep(SAMPLE_SECONDS)
        finally:
            await engine.dispose()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self, top: int = 15) -> None:
        print(f"\n{self.samples} samples of pg_stat_activity: share of samples each statement was running")
        for (query, waiting), seen in self.seen.most_common(top):
            print(f"{seen / max(self.samples, 1):5.2f}  {waiting:8s} {query}")


def drain(database: NodeDatabase, count: int, serve_args: list[str], kind: str) -> None:
    with Node(database, f"scale-{kind}", *serve_args) as node:
        server_before, busy_before = postgres_cpu_seconds(), machine_busy()
        start = last_at = time.perf_counter()
        last = 0
        while True:
            time.sleep(1)  # the end is seen within a second; a line is printed every 10 s
            seen = asyncio.run(counts(database))
            done, outbox, now = finished(seen), seen["outbox"], time.perf_counter()
            assert isinstance(outbox, dict)
            end = drained(seen, count)
            if now - last_at >= 10 or end:
                rate = (done - last) / (now - last_at)
                print(f"{now - start:6.0f} s  finished {done:7d}  {rate:7.1f} msg/s  outbox {outbox}", flush=True)
                last, last_at = done, now
            if end:
                break
        server, busy = postgres_cpu_seconds() - server_before, machine_busy() - busy_before
        print(f"{count / (now - start):.1f} msg/s over the drain; the node's CPU time {node.cpu_seconds():.0f} s"
              + (f", PostgreSQL's {server:.0f} s" if kind == "postgres" else "")
              + f"; the machine's {os.cpu_count()} cores {busy / (now - start):.2f} busy")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("db", choices=("sqlite", "postgres"))
    parser.add_argument("messages", type=int)
    parser.add_argument("serve_args", nargs="*", help="after `--`: arguments for `wicket serve`")
    options = parser.parse_args()
    workdir = OUT / f"scale-{options.db}"
    with fresh_node_database(options.db, workdir) as database:
        began = time.perf_counter()
        run_job("bench.processing", "--messages", str(options.messages), "--store", database.url,
                "--workdir", str(workdir), timeout=3600)  # fmt: skip
        print(f"stored {options.messages} messages pending in {time.perf_counter() - began:.0f} s", flush=True)
        if options.db == "sqlite":
            drain(database, options.messages, options.serve_args, options.db)
            return
        with Sampler(database.url) as sampler:
            drain(database, options.messages, options.serve_args, options.db)
        sampler.report()


if __name__ == "__main__":
    main()
