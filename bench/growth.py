"""Benchmarks 4 and 5 (full run only): memory of the serving process, and growth with size.

Memory: one Wicket process serving SMTP with its processor and outbox worker running, as
`wicket serve` does, receives the mixed corpus over SMTP; once everything received has
been processed, its resident memory (with that of the parse worker it started) is read
after the first 10,000 messages and again after 100,000. Growth: in a process of its own
(`python -m bench.growth`), two SQLite databases are filled by `bench.rowgen`, to 1,000
and to 1,000,000 stored messages, and a Gateway is started over each. Through the real
code, five rounds of 100 corpus messages are received and processed, and a signed-in
contact's ticket list is fetched from the real portal over HTTP in five rounds of 40
requests one after another; each round runs at the small size and then at the large one,
so a slow minute on the shared machine falls on both sizes rather than on one. Cost per
message is the fastest round (the process's CPU time per message beside it), latency the
lowest round median, so a burst of other work is not read as growth.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
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
from gateway.cli.runtime import Gateway
from gateway.models import Mailbox
from gateway.storage.database import open_database

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


@asynccontextmanager
async def _generated(stored: int, workdir: Path) -> AsyncIterator[Gateway]:
    """A started Gateway over a SQLite database holding `stored` generated messages."""
    async with fresh_database("sqlite", workdir) as (settings, db):
        support = select(Mailbox.id).where(Mailbox.address == SUPPORT)
        mailbox_id = await db.read(lambda connection: connection.scalar(support))
    assert mailbox_id is not None
    # The generator writes the file alone (no WAL, no checkpointer holding it open); the
    # gateway then opens it as `wicket serve` would.
    generate(workdir / "wicket.db", stored, mailbox_id)
    db = open_database(settings)
    try:
        gateway = Gateway(settings, db)
        await gateway.start()
        try:
            yield gateway
        finally:
            await gateway.stop()
    finally:
        await db.dispose()


@asynccontextmanager
async def _ticket_list(gateway: Gateway, workdir: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """The real portal over `gateway`'s database, with a signed-in contact of 20 tickets:
    the list's URL and the session cookie."""
    from bench.portal_seed import seed_session_and_links, seed_tickets
    from portal.app import create_app, runner_options
    from portal.sessions import cookie_name

    await seed_tickets(gateway)
    session_id = await seed_session_and_links(gateway.settings, gateway.db, 0, workdir / "tokens.txt")
    runner = web.AppRunner(create_app(gateway.settings, db=gateway.db, processor=gateway.processor), **runner_options())
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/tickets", {cookie_name(gateway.settings): session_id}
    finally:
        await runner.cleanup()


async def _list_round(url: str, cookies: dict[str, str]) -> float:
    """The median latency of one round of ticket-list requests, one after another."""
    samples = []
    async with aiohttp.ClientSession(cookies=cookies) as client:
        for _ in range(LIST_REQUESTS_PER_ROUND):
            started = time.perf_counter()
            async with client.get(url, allow_redirects=False) as response:
                await response.read()
                if response.status != 200:
                    raise ChildFailed(f"GET /tickets answered {response.status}")
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def measure(sizes: tuple[int, int], workdir: Path) -> dict[str, dict[str, float]]:
    """Both sizes side by side: every round runs at one size and then at the other, so a
    slow minute on the shared machine falls on both instead of on one size's run."""
    async with AsyncExitStack() as stack:
        gateways = [await stack.enter_async_context(_generated(n, workdir / str(n))) for n in sizes]
        rounds: list[list[tuple[float, float]]] = [[], []]
        for n in range(MEASURED_ROUNDS):
            for gateway, costs in zip(gateways, rounds):
                costs.append(await _receive_and_process(gateway, n * MESSAGES_PER_ROUND))
        lists = [await stack.enter_async_context(_ticket_list(g, workdir / str(n))) for g, n in zip(gateways, sizes)]
        medians: list[list[float]] = [[], []]
        for _ in range(LIST_ROUNDS):
            for (url, cookies), latencies in zip(lists, medians):
                latencies.append(await _list_round(url, cookies))
    results = {}
    for stored, costs, latencies in zip(sizes, rounds, medians):
        wall, cpu = min(costs)
        results[str(stored)] = {
            "per_message_seconds": wall, "per_message_cpu_seconds": cpu, "list_seconds": min(latencies),
        }
    return results


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
    small_count, large_count = plan.growth_counts
    results = run_job(
        "bench.growth", "--stored", str(small_count), "--stored", str(large_count), "--workdir", str(OUT / "growth"),
        timeout=4 * 3600,
    )
    small, large = results[str(small_count)], results[str(large_count)]
    label = f"at {small_count:,} stored"
    note = f"at {large_count:,} vs {small_count:,} stored messages, rounds alternating"
    cpu = f"CPU {large['per_message_cpu_seconds'] * 1000:.1f} vs {small['per_message_cpu_seconds'] * 1000:.1f} ms/msg"
    return [
        Row(names[0], large["per_message_seconds"] * 1000, "ms", small["per_message_seconds"] * 1000, label,
            GROWTH_TARGET, f"{note}; fastest of {MEASURED_ROUNDS} rounds; {cpu}"),
        Row(names[1], large["list_seconds"] * 1000, "ms", small["list_seconds"] * 1000, label, GROWTH_TARGET, note),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.growth")
    parser.add_argument("--stored", type=int, action="append", required=True, help="give both sizes, smaller first")
    parser.add_argument("--workdir", type=Path, required=True)
    options = parser.parse_args()
    if len(options.stored) != 2 or not options.stored[0] < options.stored[1]:
        parser.error("give --stored twice: the smaller size, then the larger")
    small, large = options.stored
    announce("RESULT", **asyncio.run(measure((small, large), options.workdir)))


if __name__ == "__main__":
    main()
