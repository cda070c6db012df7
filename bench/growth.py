"""Benchmarks 4 and 5 (full run only): memory of the serving process, and growth with size.

Memory: one Wicket process serving SMTP with its processor and outbox worker running, as
`wicket serve` does, receives the mixed corpus over SMTP; once everything received has
been processed, its resident memory (with that of the parse worker it started) is read
after the first 10,000 messages and again after 100,000. Growth: in a process of its own (`python -m bench.growth`), a SQLite
database is filled by `bench.rowgen` to 1,000 or 1,000,000 stored messages, and then,
through the real code, five rounds of 100 corpus messages are received and processed
(cost per message: the fastest round, so a burst of other work on a shared machine does
not count as growth; the process's CPU time per message is reported beside it) and a
signed-in contact's ticket list is fetched from the real portal over HTTP in five rounds
of 40 requests one after another (latency: the lowest round median, for the same
reason); the two sizes are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
from functools import partial
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import select

from bench.corpus import backlog, mail
from bench.databases import SUPPORT, fresh_database
from bench.plan import Plan
from bench.procs import OUT, Child, ChildFailed, announce, run_job
from bench.report import Row, Target
from bench.rowgen import generate
from bench.smtp_client import blast, to_data
from gateway.db import open_database
from gateway.models import Mailbox
from gateway.runtime import Gateway

MEMORY_TARGET = Target("<", 1.2)
GROWTH_TARGET = Target("<=", 1.2)
MEASURED_ROUNDS = 5
MESSAGES_PER_ROUND = 100
LIST_ROUNDS = 5
LIST_REQUESTS_PER_ROUND = 40


def _corpus_message(first: int, seq: int) -> tuple[str, bytes]:
    message = mail(first + seq)
    return message.mail_from, to_data(message.raw)


def _wait_processed(database: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM inbound_email WHERE status IN ('pending', 'processing')"
            ).fetchone()[0]
            if waiting == 0:
                return
            time.sleep(1)
    raise ChildFailed(f"messages still unprocessed after {timeout:.0f}s")


def run_memory(plan: Plan) -> list[Row]:
    name = "memory of the serving process"
    if plan.memory_counts is None:
        return [Row(name, target=MEMORY_TARGET, note="full run only")]
    small, large = plan.memory_counts
    workdir = OUT / "memory"
    with Child("serve-memory", "wicket-smtp", "--process", "--workdir", str(workdir)) as child:
        sizes = []
        for first, last in ((0, small), (small, large)):
            result = asyncio.run(
                blast("127.0.0.1", child.port, total=last - first, sessions=20, per_connection=10,
                      messages=partial(_corpus_message, first))
            )
            if result.refused:
                raise ChildFailed(f"the server refused {result.refused} messages")
            _wait_processed(workdir / "wicket.db", timeout=6 * 3600)
            sizes.append(child.memory_kib()[0] / 1024)
        statuses = child.stop()["statuses"]
    note = f"after {large:,} vs {small:,} msgs; {statuses}"
    return [Row(name, sizes[1], "MiB", sizes[0], f"after {small:,}", MEMORY_TARGET, note)]


async def _list_latency(gateway: Gateway, workdir: Path) -> float:
    from bench.portal_seed import seed_session_and_links, seed_tickets
    from portal.app import create_app, runner_options
    from portal.sessions import cookie_name

    await seed_tickets(gateway)
    session_id = await seed_session_and_links(gateway.settings, gateway.db, 0, workdir / "tokens.txt")
    runner = web.AppRunner(create_app(gateway.settings, db=gateway.db), **runner_options())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/tickets"
    medians = []
    try:
        async with aiohttp.ClientSession(cookies={cookie_name(gateway.settings): session_id}) as client:
            for _ in range(LIST_ROUNDS):
                samples = []
                for _ in range(LIST_REQUESTS_PER_ROUND):
                    started = time.perf_counter()
                    async with client.get(url, allow_redirects=False) as response:
                        await response.read()
                        if response.status != 200:
                            raise ChildFailed(f"GET /tickets answered {response.status}")
                    samples.append(time.perf_counter() - started)
                medians.append(statistics.median(samples))
    finally:
        await runner.cleanup()
    return min(medians)


async def measure(stored: int, workdir: Path) -> dict[str, float]:
    async with fresh_database("sqlite", workdir) as (settings, db):
        async with db.sessions() as session:
            mailbox_id = await session.scalar(select(Mailbox.id).where(Mailbox.address == SUPPORT))
    assert mailbox_id is not None
    # The generator writes the file alone (no WAL, no checkpointer holding it open); the
    # gateway then opens it as `wicket serve` would.
    generate(workdir / "wicket.db", stored, mailbox_id)
    db = open_database(settings)
    try:
        gateway = Gateway(settings, db)
        await gateway.start()
        rounds = [await _receive_and_process(gateway, n * MESSAGES_PER_ROUND) for n in range(MEASURED_ROUNDS)]
        latency = await _list_latency(gateway, workdir)
        await gateway.stop()
    finally:
        await db.dispose()
    wall, cpu = min(rounds)
    return {"per_message_seconds": wall, "per_message_cpu_seconds": cpu, "list_seconds": latency}


async def _receive_and_process(gateway: Gateway, first: int) -> tuple[float, float]:
    """Wall and CPU seconds per message to store and process one round of corpus messages."""
    mails = backlog(MESSAGES_PER_ROUND, first)
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(gateway.receive(m.raw, mail_from=m.mail_from, rcpt_tos=(SUPPORT,)) for m in mails))
    await gateway.processor.drain()
    return (time.perf_counter() - started) / len(mails), (time.process_time() - cpu) / len(mails)


def run_growth(plan: Plan) -> list[Row]:
    names = ("growth: ingest+process cost per message", "growth: ticket list latency")
    if plan.growth_counts is None:
        return [Row(name, target=GROWTH_TARGET, note="full run only") for name in names]
    small, large = (
        run_job("bench.growth", "--stored", str(n), "--workdir", str(OUT / f"growth-{n}"), timeout=4 * 3600)
        for n in plan.growth_counts
    )
    label = f"at {plan.growth_counts[0]:,} stored"
    note = f"at {plan.growth_counts[1]:,} vs {plan.growth_counts[0]:,} stored messages"
    cpu = f"CPU {large['per_message_cpu_seconds'] * 1000:.1f} vs {small['per_message_cpu_seconds'] * 1000:.1f} ms/msg"
    return [
        Row(names[0], large["per_message_seconds"] * 1000, "ms", small["per_message_seconds"] * 1000, label,
            GROWTH_TARGET, f"{note}; fastest of {MEASURED_ROUNDS} rounds; {cpu}"),
        Row(names[1], large["list_seconds"] * 1000, "ms", small["list_seconds"] * 1000, label, GROWTH_TARGET, note),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.growth")
    parser.add_argument("--stored", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    options = parser.parse_args()
    announce("RESULT", **asyncio.run(measure(options.stored, options.workdir)))


if __name__ == "__main__":
    main()
