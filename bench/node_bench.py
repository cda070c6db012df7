"""Benchmark 6: the whole node as a user runs it, `wicket serve` with no flags.

For each database, over a database made by `wicket db upgrade` and friends (bench/node.py):

- **acceptance**: the same SMTP loads as benchmark 1 (20 sessions of 4 KB messages, one
  and ten per connection) against aiosmtpd's null handler in one process, against plain
  `wicket serve` (the node of processes, processing what it accepts as it goes) and
  against `wicket serve --role smtp`; the best rate over the rounds counts. Plain
  `wicket serve` must then have stored and processed every message it acknowledged.
- **end to end**: a fresh node loaded at half of plain `wicket serve`'s best ten-per-
  connection rate for `end_to_end_seconds`, on 20 persistent connections. Each message's
  250 is timed, and the agent API's ticket list (`GET /api/v1/tickets?limit=200`, newest
  first, polled every 0.1 s with an agent's key) says when its ticket became visible: the
  rows give p50 and p99 of 250-to-visible, how long after the last 250 the last ticket
  showed (the backlog back to zero), and DATA-to-250 at that rate with the load average
  beside it. The backlog over time (acknowledged, not yet visible) is drawn into
  bench/out/backlog-<db>.png. The same again at `STEADY_RATE`, a rate the node processes
  as fast as it accepts, gives those figures without a backlog (rows with no target).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.databases import postgres_available
from bench.node import Node, NodeDatabase, counts, finished, fresh_node_database, wait_processed
from bench.plan import Plan
from bench.procs import OUT, Child, ChildFailed
from bench.report import Row, Target, load_average
from bench.smtp_bench import NAMES, load
from bench.smtp_client import blast, paced

MODES = (1, 10)
SESSIONS = 20
SERVE_TARGET = Target(">=", 1.5)
SMTP_ROLE_TARGET = Target(">=", 1.0)
VISIBLE_TARGET = Target("<=", 1000, "ms")
DRAIN_TARGET = Target("<=", 5, "s")
LATENCY_TARGET = Target("<=", 25, "ms")
POLL_SECONDS = 0.1
# A rate the node processes as fast as it accepts, for the same figures without a backlog.
STEADY_RATE = 100.0
SUBJECT = "visible test"


def _best(rates: list[float]) -> float:
    return max(rates) if rates else 0.0


def _null_rates(plan: Plan) -> dict[int, list[float]]:
    rates: dict[int, list[float]] = {mode: [] for mode in MODES}
    for _ in range(plan.smtp_rounds):
        with Child("node-null-smtp", "null-smtp") as child:
            for mode in MODES:
                total = plan.smtp_single if mode == 1 else plan.smtp_multi
                rates[mode].append(load(child.port, mode, total).rate)
            child.stop()
    return rates


def _node_rates(database: NodeDatabase, plan: Plan, name: str, *args: str) -> tuple[dict[int, list[float]], int]:
    """Rates of `wicket serve ARGS` over the rounds, and how many messages were sent."""
    rates: dict[int, list[float]] = {mode: [] for mode in MODES}
    sent = 0
    for _ in range(plan.smtp_rounds):
        with Node(database, name, *args) as node:
            node.wait_ready(port=node.smtp_port)
            for mode in MODES:
                total = plan.smtp_single if mode == 1 else plan.smtp_multi
                result = load(node.smtp_port, mode, total)
                if result.refused:
                    raise ChildFailed(f"{name} refused {result.refused} of {total} messages")
                rates[mode].append(result.rate)
                sent += total
    return rates, sent


def _acceptance(kind: str, plan: Plan) -> list[Row]:
    null = _null_rates(plan)
    rows = []
    with fresh_node_database(kind, OUT / f"node-{kind}") as database:
        serve, sent = _node_rates(database, plan, f"serve-{kind}")
        # Plain `wicket serve` processed as it accepted; what is left drains with a node of its own.
        with Node(database, f"serve-{kind}-drain") as node:
            node.wait_ready(port=node.smtp_port)
            seen = asyncio.run(wait_processed(database, sent, seconds=900))
        smtp_only, more = _node_rates(database, plan, f"smtp-{kind}", "--role", "smtp")
        stored = asyncio.run(counts(database))
    inbound = seen["inbound"]
    assert isinstance(inbound, dict)
    done = finished(seen)
    total_stored = sum(stored["inbound"].values())  # type: ignore[union-attr]
    if total_stored != sent + more:
        raise ChildFailed(f"{kind}: sent {sent + more} messages but the database holds {total_stored}")
    processed = f"{done} of {sent} processed ({', '.join(f'{n} {s}' for s, n in sorted(inbound.items()))})"
    for mode in MODES:
        name = f"plain `wicket serve` accepts, {NAMES[kind]}, {mode} msg/conn"
        rows.append(Row(name, _best(serve[mode]), "msg/s", _best(null[mode]), "null aiosmtpd", SERVE_TARGET,
                        processed))
    for mode in MODES:
        name = f"`wicket serve --role smtp` accepts, {NAMES[kind]}, {mode} msg/conn"
        rows.append(Row(name, _best(smtp_only[mode]), "msg/s", _best(null[mode]), "null aiosmtpd", SMTP_ROLE_TARGET))
    return rows


@dataclass
class Timeline:
    """When each message was acknowledged and when its ticket became visible."""

    accepted: dict[int, float] = field(default_factory=dict)
    visible: dict[int, float] = field(default_factory=dict)
    polls: int = 0

    def latencies(self) -> list[float]:
        return [self.visible[seq] - at for seq, at in self.accepted.items() if seq in self.visible]

    def backlog(self, start: float, step: float = 0.1) -> tuple[list[float], list[int]]:
        end = max([*self.accepted.values(), *self.visible.values(), start])
        times, depth = [], []
        accepted, visible = sorted(self.accepted.values()), sorted(self.visible.values())
        t, a, v = start, 0, 0
        while t <= end + step:
            while a < len(accepted) and accepted[a] <= t:
                a += 1
            while v < len(visible) and visible[v] <= t:
                v += 1
            times.append(t - start)
            depth.append(a - v)
            t += step
        return times, depth


async def _poll(node: Node, key: str, timeline: Timeline, stop: asyncio.Event) -> None:
    url = f"http://127.0.0.1:{node.http_port}/api/v1/tickets?limit=200"
    prefix = f"{SUBJECT} "
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        while not stop.is_set():
            began = time.perf_counter()
            async with http.get(url) as response:
                page = await response.json()
            now = time.perf_counter()
            timeline.polls += 1
            for ticket in page.get("tickets", []):
                subject = ticket.get("subject", "")
                if subject.startswith(prefix) and subject[len(prefix):].isdigit():
                    timeline.visible.setdefault(int(subject[len(prefix):]), now)
            await asyncio.sleep(max(0.0, POLL_SECONDS - (now - began)))


async def _load_and_watch(node: Node, key: str, rate: float, seconds: float) -> tuple[Timeline, list[float], float]:
    timeline, stop = Timeline(), asyncio.Event()
    poller = asyncio.create_task(_poll(node, key, timeline, stop))
    started = time.perf_counter()
    samples = await paced("127.0.0.1", node.smtp_port, rate=rate, seconds=seconds, connections=SESSIONS,
                          accepted=timeline.accepted.__setitem__, subject=SUBJECT)
    deadline = time.perf_counter() + 60
    while len(timeline.visible) < len(timeline.accepted) and time.perf_counter() < deadline:
        await asyncio.sleep(POLL_SECONDS)
    stop.set()
    await poller
    return timeline, samples, started


def _plot(kind: str, timeline: Timeline, started: float, rate: float, name: str) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return None
    times, depth = timeline.backlog(started)
    figure, axes = pyplot.subplots(figsize=(6, 2.5), dpi=100)
    axes.plot(times, depth, linewidth=1)
    axes.set_xlabel("seconds since the load started")
    axes.set_ylabel("acknowledged, not visible")
    axes.set_title(f"wicket serve, {NAMES[kind]}, {rate:.0f} msg/s", fontsize=9)
    figure.tight_layout()
    path = OUT / f"{name}.png"
    figure.savefig(path)
    pyplot.close(figure)
    return path


def _end_to_end(kind: str, rate: float, plan: Plan, *, steady: bool = False) -> list[Row]:
    label = "e2e-steady" if steady else "e2e"
    with fresh_node_database(kind, OUT / f"{label}-{kind}") as database, Node(database, f"{label}-{kind}") as node:
        node.wait_ready(port=node.smtp_port)
        node.wait_ready(port=node.http_port)
        timeline, samples, started = asyncio.run(_load_and_watch(node, database.api_key, rate, plan.end_to_end_seconds))
        load = load_average()
    latencies = sorted(timeline.latencies())
    missing = len(timeline.accepted) - len(latencies)
    plot = _plot(kind, timeline, started, rate, f"backlog-{kind}" + ("-steady" if steady else ""))
    drawn = f"; backlog plot {plot.relative_to(OUT.parent.parent)}" if plot else "; no plot (matplotlib absent)"
    base = f"{len(timeline.accepted)} msgs at {rate:.0f} msg/s for {plan.end_to_end_seconds:g} s"
    where = f"{NAMES[kind]}, {rate:.0f} msg/s" + (" (steady, no target)" if steady else " (half max)")
    target = (lambda t: None) if steady else (lambda t: t)
    if not latencies:
        return [Row(f"250 to ticket visible, {where}", target=target(VISIBLE_TARGET), note=f"{base}: none visible")]
    p99 = _quantile(latencies, 0.99) * 1000 if not missing else float("inf")
    drain = (max(timeline.visible.values()) - max(timeline.accepted.values())) if not missing else float("inf")
    note = (f"{base}, p50 {statistics.median(latencies) * 1000:.0f} ms; {missing} never visible; "
            f"API polled every {POLL_SECONDS:g} s{drawn}")
    data = sorted(samples)
    return [
        Row(f"250 to ticket visible (API), p99, {where}", p99, "ms", target=target(VISIBLE_TARGET), note=note),
        Row(f"backlog back to zero after the load, {where}", max(drain, 0.0), "s", target=target(DRAIN_TARGET),
            note="last 250 to last ticket visible"),
        Row(f"p99 DATA-to-250, plain `wicket serve`, {where}", _quantile(data, 0.99) * 1000, "ms",
            target=target(LATENCY_TARGET), note=f"p50 {statistics.median(data) * 1000:.1f} ms; load average {load}"),
    ]


def _quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _dry(kind: str) -> list[Row]:
    with fresh_node_database(kind, OUT / f"node-{kind}") as database, Node(database, f"dry-{kind}") as node:
        node.wait_ready(port=node.smtp_port)
        result = asyncio.run(blast("127.0.0.1", node.smtp_port, total=2, sessions=2, per_connection=1))
        seen = asyncio.run(wait_processed(database, 2, seconds=60))
    return [Row(f"plain `wicket serve` starts, accepts and processes ({NAMES[kind]})",
                note=f"dry: {result.accepted} accepted; {seen['inbound']}; {seen['tickets']} tickets")]


def run(plan: Plan, profile: bool = False) -> list[Row]:
    kinds = ["sqlite"] + (["postgres"] if asyncio.run(postgres_available()) else [])
    if plan.dry:
        return _dry(kinds[0])
    rows: list[Row] = []
    for kind in kinds:
        accepted = _acceptance(kind, plan)
        rows += accepted
        best = accepted[1].value or 0.0  # plain serve, ten per connection
        rows += _end_to_end(kind, best / 2, plan)
        rows += _end_to_end(kind, STEADY_RATE, plan, steady=True)
    if "postgres" not in kinds:
        rows.append(Row("plain `wicket serve`, PostgreSQL", note="not available: PostgreSQL does not answer"))
    return rows
