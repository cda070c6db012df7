"""Benchmark 2: draining a backlog of mixed fixture mail, against bare mail-parser.

In a process of its own (`python -m bench.processing`), a backlog from `bench.corpus` is
stored pending through `Gateway.receive` (the SMTP listener's path, untimed), then
`Processor.drain()` is timed: parse, classify, route, thread, store tickets and messages,
and write the acknowledgements and agent notifications the events ask for. The
baseline is `mailparser.parse_from_bytes` over the same bytes and nothing else, timed
before and after the drain, the faster pass counting. Both rates are messages per
second, with the CPU time per message beside them (steadier than wall time on a shared
machine): the processing process's, and that of the worker process that parses a backlog
ahead (gateway/inbound/parse_ahead.py, measured from its start to its exit); the outcome counts
show the mix really went through every path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import mailparser
from sqlalchemy import Connection, func, select

from bench.corpus import Mail, backlog
from bench.databases import SUPPORT, bench_settings, fresh_database, postgres_available
from bench.node import Node, NodeDatabase, counts, drained, fresh_node_database
from bench.plan import Plan
from bench.procs import OUT, Child, ChildFailed, announce, run_job
from bench.report import Row, Target
from bench.smtp_bench import NAMES
from gateway.cli.runtime import Gateway
from gateway.models import InboundEmail, Ticket

TARGET = Target(">=", 0.3)
NODE_TARGET = Target(">=", 0.5)
SECOND_WORKER_TARGET = Target(">=", 1.6)
RELAY_TARGET = Target(">=", 0.8)  # the relay's own CPU included: it runs on the same two cores
WORKER_ROLES = ("--role", "worker", "--role", "outbox")


def _parse_seconds(mails: list[Mail]) -> tuple[float, float]:
    """Wall and CPU seconds for bare mail-parser over `mails`."""
    started, cpu = time.perf_counter(), time.process_time()
    for mail in mails:
        mailparser.parse_from_bytes(mail.raw)
    return time.perf_counter() - started, time.process_time() - cpu


@contextlib.contextmanager
def _profiled(path: Path | None) -> Iterator[None]:
    """Profile the block with pyinstrument into `path`; without a path, just run it."""
    if path is None:
        yield
        return
    from pyinstrument import Profiler

    with Profiler(async_mode="enabled") as profiler:
        yield
    path.write_text(profiler.output_text(unicode=True))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _store(gateway: Gateway, mails: list[Mail]) -> None:
    for start in range(0, len(mails), 200):
        chunk = mails[start : start + 200]
        await asyncio.gather(*(gateway.receive(m.raw, mail_from=m.mail_from, rcpt_tos=(SUPPORT,)) for m in chunk))


async def measure(count: int, db_kind: str, workdir: Path, profile: Path | None) -> dict[str, object]:
    mails = backlog(count)
    parse_before = _parse_seconds(mails)
    async with fresh_database(db_kind, workdir) as (settings, db):  # type: ignore[arg-type]
        gateway = Gateway(settings, db)
        await gateway.start()
        await _store(gateway, mails)
        gateway.processor.warm_up()  # as a node's processor does when it starts
        workers = _children_cpu()
        with _profiled(profile):
            started, cpu = time.perf_counter(), time.process_time()
            processed = await gateway.processor.drain()
            drain, drain_cpu = time.perf_counter() - started, time.process_time() - cpu
        await gateway.stop()  # parse workers exit here, and their CPU time is counted
        workers = _children_cpu() - workers

        def outcome(connection: Connection) -> tuple[dict[str, int], int]:
            rows = connection.execute(select(InboundEmail.status, func.count()).group_by(InboundEmail.status))
            tickets = connection.scalar(select(func.count()).select_from(Ticket))
            return {status: number for status, number in rows}, tickets

        statuses, tickets = await db.read(outcome)
    parse_after = _parse_seconds(mails)
    return {
        "messages": count,
        "processed": processed,
        "drain_seconds": drain,
        "drain_cpu_seconds": drain_cpu,
        "worker_cpu_seconds": workers,
        "parse_seconds": min(parse_before[0], parse_after[0]),
        "parse_cpu_seconds": min(parse_before[1], parse_after[1]),
        "statuses": statuses,
        "tickets": tickets,
    }


async def store_backlog(count: int, url: str, workdir: Path) -> dict[str, object]:
    """Store `count` corpus messages pending in the node database at `url`; time bare mail-parser on them."""
    mails = backlog(count)
    parse = _parse_seconds(mails)
    settings = bench_settings(url, workdir)
    gateway = Gateway(settings)
    await gateway.start()
    try:
        await _store(gateway, mails)
    finally:
        await gateway.stop()
        await gateway.db.dispose()
    return {"messages": count, "parse_seconds": parse[0], "parse_cpu_seconds": parse[1]}


def _node_drain(
    database: NodeDatabase, name: str, count: int, *args: str, env: dict[str, str] | None = None
) -> tuple[float, dict[str, object]]:
    """Seconds from `wicket serve ARGS` claiming the first row to inbound and outbox both finished."""
    with Node(database, name, *args, env=env) as node:
        first = done = None
        deadline = time.monotonic() + 3600
        while done is None and time.monotonic() < deadline:
            seen = asyncio.run(counts(database))
            now = time.perf_counter()
            inbound = seen["inbound"]
            assert isinstance(inbound, dict)
            if first is None and inbound.get("pending", 0) < count:
                first = now
            if drained(seen, count):
                done = now
            time.sleep(0.1)
        if first is None or done is None:
            raise ChildFailed(f"{name} did not finish {count} messages within the hour; see {node.log_path}")
    return done - first, seen


def _listed(by_status: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))


def _relay_env(relay: Child, workdir: Path) -> dict[str, str]:
    """Settings that send the node's mail to `relay` as a deployment sends to its submission port."""
    return {"WICKET_OUTBOUND_SENDER": "smtp", "WICKET_RELAY_HOST": "localhost", "WICKET_RELAY_PORT": str(relay.port),
            "WICKET_RELAY_SECURITY": "starttls", "WICKET_RELAY_CA_FILE": str(workdir / "relay-ca.pem"),
            "WICKET_RELAY_USERNAME": "wicket", "WICKET_RELAY_PASSWORD": "bench"}  # fmt: skip


def _through_node(kind: str, plan: Plan) -> list[Row]:
    """The backlog processed by plain `wicket serve` (to the maildir, then to an SMTP relay), then by
    `--role worker --role outbox` in one process and two."""
    rates: dict[str, float] = {}
    notes: dict[str, str] = {}
    parser = 0.0
    workdir = OUT / f"processing-node-{kind}"
    runs = {"serve": (), "relay": (), "one": WORKER_ROLES, "two": WORKER_ROLES + ("--workers", "2")}
    for label, args in runs.items():
        with contextlib.ExitStack() as stack:
            database = stack.enter_context(fresh_node_database(kind, workdir))
            stored = run_job("bench.processing", "--messages", str(plan.backlog), "--store", database.url,
                             "--workdir", str(workdir), timeout=3600)
            parser = max(parser, plan.backlog / float(stored["parse_seconds"]))
            relay = env = None
            if label == "relay":
                relay = stack.enter_context(Child(f"relay-{kind}", "relay", "--ca", str(workdir / "relay-ca.pem")))
                env = _relay_env(relay, workdir)
            seconds, seen = _node_drain(database, f"processing-{kind}-{label}", plan.backlog, *args, env=env)
            taken = f"; {relay.stop()['accepted']} taken by the relay" if relay is not None else ""
        rates[label] = plan.backlog / seconds
        inbound, outbox = seen["inbound"], seen["outbox"]
        assert isinstance(inbound, dict) and isinstance(outbox, dict)
        notes[label] = (f"{plan.backlog} msgs: {_listed(inbound)}; {seen['tickets']} tickets; "
                        f"outbox {_listed(outbox)}{taken}")
    name = NAMES[kind]
    return [
        Row(f"processing + outbox, plain `wicket serve`, {name}", rates["serve"], "msg/s", parser,
            "mail-parser alone", NODE_TARGET, notes["serve"]),
        Row(f"the same sending to an SMTP relay (STARTTLS, AUTH), {name}", rates["relay"], "msg/s", rates["serve"],
            "sending to the maildir", RELAY_TARGET, notes["relay"]),
        Row(f"processing + outbox, `wicket serve --role worker --role outbox`, {name}", rates["one"], "msg/s", parser,
            "mail-parser alone", NODE_TARGET, notes["one"]),
        Row(f"the same with `--workers 2`, {name}", rates["two"], "msg/s", rates["one"], "one worker process",
            SECOND_WORKER_TARGET if kind == "postgres" else None, notes["two"]),
    ]


def run(plan: Plan, profile: bool = False) -> list[Row]:
    rows = _in_process(plan, profile)
    if plan.dry:
        return rows
    for kind in ["sqlite"] + (["postgres"] if asyncio.run(postgres_available()) else []):
        rows += _through_node(kind, plan)
    return rows


def _in_process(plan: Plan, profile: bool = False) -> list[Row]:
    args = ["--messages", str(plan.backlog), "--workdir", str(OUT / "processing")]
    if profile:
        args += ["--profile", str(OUT / "profile-processing.txt")]
    result = run_job("bench.processing", *args, timeout=3600)
    count = int(result["messages"])
    wicket = count / float(result["drain_seconds"])
    parser = count / float(result["parse_seconds"])
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(result["statuses"].items()))
    keys = ("drain_cpu_seconds", "worker_cpu_seconds", "parse_cpu_seconds")
    per_message = [float(result[key]) / count * 1000 for key in keys]
    cpu = f"CPU {per_message[0]:.2f} + parse worker {per_message[1]:.2f} vs {per_message[2]:.2f} ms/msg"
    note = f"{count} msgs: {statuses}; {result['tickets']} tickets; {cpu}"
    if plan.dry:
        return [Row("processing job starts and drains", note=f"dry: {note}")]
    return [Row("processing backlog (SQLite)", wicket, "msg/s", parser, "mail-parser alone", TARGET, note)]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.processing")
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--profile", type=Path, help="write a pyinstrument profile of the drain here")
    parser.add_argument("--store", metavar="URL", help="only store the backlog pending in the database at URL")
    options = parser.parse_args()
    if options.store:
        announce("RESULT", **asyncio.run(store_backlog(options.messages, options.store, options.workdir)))
        return
    result = asyncio.run(measure(options.messages, options.db, options.workdir, options.profile))
    announce("RESULT", **result)


if __name__ == "__main__":
    main()
