"""How much each benchmark does in a `--dry`, `--quick` or full run.

A `Plan` is the only place sizes live, so the three modes differ in numbers and never in
code paths: `--dry` starts every server and sends a handful of requests, `--quick` is
sized to finish in well under two minutes on a 2-core machine, and the full run (`make
bench`) uses the issue's sizes, including the memory and growth runs that take long.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Plan:
    mode: str
    smtp_rounds: int
    smtp_single: int  # messages sent with one message per connection
    smtp_multi: int  # messages sent with ten messages per connection (a multiple of 200)
    latency_seconds: float
    backlog: int  # mixed fixture messages processed from the pending backlog
    wrk_seconds: int
    links: int  # magic links issued for the link-exchange run
    end_to_end_seconds: float = 60.0  # the whole node loaded at half its best rate
    cli_runs: int = 10  # whole-process runs of each timed command (the median counts)
    memory_counts: tuple[int, int] | None = None
    growth_counts: tuple[int, int] | None = None

    @property
    def dry(self) -> bool:
        return self.mode == "dry"


DRY = Plan(
    "dry", smtp_rounds=1, smtp_single=0, smtp_multi=0, latency_seconds=0, backlog=20, wrk_seconds=0, links=3,
    end_to_end_seconds=1, cli_runs=1,
)
QUICK = Plan(
    "quick", smtp_rounds=2, smtp_single=600, smtp_multi=1000, latency_seconds=4, backlog=600, wrk_seconds=4,
    links=3000, end_to_end_seconds=10, cli_runs=5,
)
FULL = Plan(
    "full", smtp_rounds=3, smtp_single=4000, smtp_multi=10000, latency_seconds=15, backlog=10_000,
    wrk_seconds=10, links=12_000, memory_counts=(10_000, 100_000), growth_counts=(1_000, 1_000_000),
)
