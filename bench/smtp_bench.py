"""Benchmark 1: SMTP acceptance against aiosmtpd's null handler, and DATA-to-250 latency.

Each round starts the null server, Wicket over a fresh SQLite file and Wicket over a fresh
PostgreSQL schema, each in its own process, and loads each with 20 concurrent sessions of
4 KB messages, first one message per connection and then ten. The load comes from
Postfix's smtp-source when bench/setup.sh has unpacked it (ten per connection is
`smtp-source -d` with 200 messages over 20 sessions, repeated) and from
`bench.smtp_client.blast` otherwise. A server's own count of accepted or stored messages
must equal what was sent. The best rate over the rounds counts, and the server's CPU
time per message (from /proc, less disturbed by other load on the machine) is shown
beside it; with `profile` the Wicket servers run under pyinstrument. Then, on fresh servers,
`paced` sends at half of Wicket's best rate and reports the 99th percentile latency.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.databases import SUPPORT, postgres_available
from bench.plan import Plan
from bench.procs import OUT, ROOT, Child, ChildFailed, tool_env
from bench.report import Row, Target
from bench.smtp_client import MESSAGE_SIZE, SENDER, LoadResult, blast, paced

SESSIONS = 20
MODES = (1, 10)
TARGETS = {"sqlite": Target(">=", 0.8), "postgres": Target(">=", 0.6)}
LATENCY_TARGET = Target("<=", 25, "ms")
NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


@dataclass(frozen=True, slots=True)
class Run:
    """One load run: messages per second, and the server's CPU seconds per message."""

    rate: float
    cpu: float


def smtp_source() -> Path | None:
    """smtp-source unpacked by setup.sh, else one on PATH, else None."""
    unpacked = ROOT / "bench" / ".tools" / "usr" / "sbin" / "smtp-source"
    if unpacked.is_file():
        return unpacked
    found = shutil.which("smtp-source")
    return Path(found) if found else None


def generator_name() -> str:
    tool = smtp_source()
    return "Postfix smtp-source" if tool else "bench.smtp_client (smtp-source absent; run bench/setup.sh)"


def _smtp_source_load(tool: Path, port: int, per_connection: int, total: int) -> LoadResult:
    command = [str(tool), "-s", str(SESSIONS), "-l", str(MESSAGE_SIZE), "-f", SENDER, "-t", SUPPORT]
    command += ["-M", "bench.client.test"]
    if per_connection == 1:
        runs = [[*command, "-m", str(total)]]
    else:
        batch = SESSIONS * per_connection  # with -d each session keeps its connection: 10 messages each
        runs = [[*command, "-d", "-m", str(batch)]] * (total // batch)
    started = time.perf_counter()
    for run in runs:
        subprocess.run([*run, f"127.0.0.1:{port}"], env=tool_env(), check=True, capture_output=True, timeout=300)
    return LoadResult(total, 0, time.perf_counter() - started)


def load(port: int, per_connection: int, total: int) -> LoadResult:
    """Send `total` messages; smtp-source exits non-zero on any refusal, blast counts them."""
    tool = smtp_source()
    if tool is not None:
        return _smtp_source_load(tool, port, per_connection, total)
    return asyncio.run(blast("127.0.0.1", port, total=total, sessions=SESSIONS, per_connection=per_connection))


def _server_args(server: str, workdir: Path, profile: bool = False) -> list[str]:
    if server == "null":
        return ["null-smtp"]
    args = ["wicket-smtp", "--db", server, "--workdir", str(workdir)]
    return args + ["--profile", str(OUT / f"profile-smtp-{server}.txt")] if profile else args


def _accept_round(server: str, plan: Plan, runs: dict[tuple[str, int], list[Run]], profile: bool) -> None:
    sent = 0
    with Child(f"smtp-{server}", *_server_args(server, OUT / f"smtp-{server}", profile)) as child:
        for per_connection in MODES:
            total = plan.smtp_single if per_connection == 1 else plan.smtp_multi
            cpu = child.cpu_seconds()
            result = load(child.port, per_connection, total)
            if result.refused:
                raise ChildFailed(f"{server} refused {result.refused} of {total} messages")
            runs[server, per_connection].append(Run(result.rate, (child.cpu_seconds() - cpu) / total))
            sent += total
        done = child.stop()
    counted = done.get("accepted", done.get("stored"))
    if counted != sent:
        raise ChildFailed(f"{server}: sent {sent} messages but the server counted {counted}")


def _latency(db: str, rate: float, plan: Plan) -> tuple[float, float, int]:
    with Child(f"latency-{db}", *_server_args(db, OUT / f"latency-{db}")) as child:
        samples = asyncio.run(
            paced("127.0.0.1", child.port, rate=rate, seconds=plan.latency_seconds, connections=SESSIONS)
        )
        child.stop()
    cut = statistics.quantiles(samples, n=100)
    return cut[98] * 1000, statistics.median(samples) * 1000, len(samples)


def _best(runs: list[Run]) -> Run:
    """The fastest rate and the least CPU per message over the rounds (noise only slows)."""
    return Run(max(r.rate for r in runs), min(r.cpu for r in runs))


def _dry(databases: list[str]) -> list[Row]:
    rows = []
    for server in ["null", *databases]:
        with Child(f"smtp-{server}", *_server_args(server, OUT / f"smtp-{server}")) as child:
            result = asyncio.run(blast("127.0.0.1", child.port, total=2, sessions=2, per_connection=1))
            child.stop()
        rows.append(Row(f"SMTP {server} server starts and accepts", note=f"dry: {result.accepted} accepted"))
    return rows


def run(plan: Plan, profile: bool = False) -> list[Row]:
    databases = ["sqlite"] + (["postgres"] if asyncio.run(postgres_available()) else [])
    if plan.dry:
        return _dry(databases[:1])
    runs: dict[tuple[str, int], list[Run]] = defaultdict(list)
    for _ in range(plan.smtp_rounds):
        for server in ["null", *databases]:
            _accept_round(server, plan, runs, profile)
    rows: list[Row] = []
    for db in TARGETS:
        for per_connection in MODES:
            name = f"SMTP accept, {NAMES[db]}, {per_connection} msg/conn"
            if db not in databases:
                rows.append(Row(name, target=TARGETS[db], note="not available: PostgreSQL does not answer"))
                continue
            wicket, null = _best(runs[db, per_connection]), _best(runs["null", per_connection])
            note = f"server CPU {wicket.cpu * 1e6:.0f} vs {null.cpu * 1e6:.0f} µs/msg"
            rows.append(Row(name, wicket.rate, "msg/s", null.rate, "null aiosmtpd", TARGETS[db], note))
    for db in TARGETS:
        name = f"p99 DATA-to-250 at half max rate, {NAMES[db]}"
        if db not in databases:
            rows.append(Row(name, target=LATENCY_TARGET, note="not available"))
            continue
        rate = _best(runs[db, 10]).rate / 2
        p99, p50, count = _latency(db, rate, plan)
        note = f"{count} msgs at {rate:.0f} msg/s, p50 {p50:.1f} ms"
        rows.append(Row(name, p99, "ms", target=LATENCY_TARGET, note=note))
    return rows
