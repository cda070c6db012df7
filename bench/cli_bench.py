"""Benchmark 7: how long the command line takes, as whole processes.

`wicket --help` and `wicket tickets list` on an empty, migrated SQLite database, each run
`cli_runs` times through the installed `wicket` script (interpreter start, imports,
settings, the query, the table); the median counts. Which modules each command loads is
held by tests/cli/test_cli_imports.py; this row times it.

Beside each, as its baseline, the same interpreter importing only the libraries the
command cannot do without (`FLOORS`), timed the same way in the same run: what is left
above it is Wicket's own (its models, settings and query). The targets are absolute, so
a slower machine misses them while the ratio to the floor stays put.

A third row times plain `wicket serve` from its start until the supervisor says every
process of the node is running (SQLite, the node's own layout), with the node's CPU time
by then, against one process importing what a role process runs: the node starts its
processes from a fork server that imports that once (docs/architecture.md, "One node,
several processes"). It has no target.
"""

from __future__ import annotations

import statistics
import subprocess
import time

from bench.node import WICKET, Node, fresh_node_database, node_env, wicket
from bench.plan import Plan
from bench.procs import OUT
from bench.report import Row, Target

TARGETS = {"--help": Target("<=", 0.3, "s"), "tickets list": Target("<=", 0.6, "s")}
# What each command imports of others' code at the least: click to parse the command line;
# to list tickets, also asyncio, settings (pydantic-settings), the ORM with the SQLite
# driver and rich's table.
FLOORS = {
    "--help": ("click", "click"),
    "tickets list": (
        "asyncio, click, pydantic-settings, SQLAlchemy ORM, aiosqlite, rich",
        "asyncio, click, pydantic_settings, sqlalchemy.orm, sqlalchemy.dialects.sqlite.aiosqlite, rich.table",
    ),
}


def _timed(env: dict[str, str], command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)
    return time.perf_counter() - started


def _medians(env: dict[str, str], floor: list[str], command: list[str], runs: int) -> tuple[float, float, float]:
    """Median seconds of the floor and of the command, run alternately; and the command's fastest."""
    floors, times = [], []
    for _ in range(runs):  # alternating, so both see the same moments of a shared machine
        floors.append(_timed(env, floor))
        times.append(_timed(env, command))
    return statistics.median(floors), statistics.median(times), min(times)


PYTHON = str(WICKET.parent / "python")  # the interpreter the `wicket` script runs on
SERVING_MODULES = "gateway.cli.serve, gateway.cli.runtime, gateway.cli.node, portal.app"
NODE_STARTS = 5


def _node_start(plan: Plan) -> Row:
    """Median seconds from `wicket serve` to "node running", beside one process's imports."""
    starts, cpu, floors = [], [], []
    with fresh_node_database("sqlite", OUT / "cli-serve") as database:
        for _ in range(min(plan.cli_runs, NODE_STARTS)):
            floors.append(_timed(database.env, [PYTHON, "-c", f"import {SERVING_MODULES}"]))
            started = time.perf_counter()
            with Node(database, "cli-serve") as node:
                node.wait_ready()
                starts.append(time.perf_counter() - started)
                cpu.append(node.cpu_seconds())
    note = (f"median of {len(starts)} starts, the node's CPU by then {statistics.median(cpu):.1f} s; "
            f"no target")
    return Row("plain `wicket serve` until every process runs (SQLite)", statistics.median(starts), "s",
               statistics.median(floors), "one process importing what a role process runs", note=note)


def run(plan: Plan, profile: bool = False) -> list[Row]:
    workdir = OUT / "cli"
    workdir.mkdir(parents=True, exist_ok=True)
    for leftover in workdir.glob("wicket.db*"):
        leftover.unlink()
    env = node_env(f"sqlite+aiosqlite:///{workdir / 'wicket.db'}", workdir)
    wicket(env, "db", "upgrade")
    rows = []
    for command, target in TARGETS.items():
        floor_name, modules = FLOORS[command]
        floor, median, fastest = _medians(
            env, [PYTHON, "-c", f"import {modules}"], [str(WICKET), *command.split()], plan.cli_runs
        )
        note = f"median of {plan.cli_runs} runs, fastest {fastest:.2f} s"
        rows.append(Row(f"`wicket {command}`" + (" (empty database)" if "list" in command else ""), median, "s",
                        floor, f"importing {floor_name} alone", target, note))
    rows.append(_node_start(plan))
    return rows
