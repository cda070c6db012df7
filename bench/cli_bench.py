"""Benchmark 7: how long the command line takes, as whole processes.

`wicket --help` and `wicket tickets list` on an empty, migrated SQLite database, each run
`cli_runs` times through the installed `wicket` script (interpreter start, imports,
settings, the query, the table); the median counts. Which modules each command loads is
held by tests/cli/test_cli_imports.py; this row times it.
"""

from __future__ import annotations

import statistics
import subprocess
import time

from bench.node import WICKET, node_env, wicket
from bench.plan import Plan
from bench.procs import OUT
from bench.report import Row, Target

TARGETS = {"--help": Target("<=", 0.3, "s"), "tickets list": Target("<=", 0.6, "s")}


def _median_seconds(env: dict[str, str], args: list[str], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(WICKET), *args], env=env, check=True, capture_output=True, timeout=60)
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


def run(plan: Plan, profile: bool = False) -> list[Row]:
    workdir = OUT / "cli"
    workdir.mkdir(parents=True, exist_ok=True)
    for leftover in workdir.glob("wicket.db*"):
        leftover.unlink()
    env = node_env(f"sqlite+aiosqlite:///{workdir / 'wicket.db'}", workdir)
    wicket(env, "db", "upgrade")
    rows = []
    for command, target in TARGETS.items():
        median, fastest = _median_seconds(env, command.split(), plan.cli_runs)
        note = f"median of {plan.cli_runs} runs, fastest {fastest:.2f} s"
        rows.append(Row(f"`wicket {command}`" + (" (empty database)" if "list" in command else ""), median, "s",
                        target=target, note=note))
    return rows
