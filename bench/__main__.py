"""`bench/run`: run the benchmarks, print one table, and record it in bench/RESULTS.md.

Without options it is the full run (`make bench`); `--quick` is the under-two-minutes
version and `--dry` only starts every server and job with a handful of requests (the
smoke test's mode). `--only` picks benchmarks, `--profile` runs the Wicket SMTP servers
and the processing job under pyinstrument and writes the profiles to bench/out/.
`--memory-counts` and `--growth-counts` replace the plan's two sizes of those runs (to try
them at intermediate sizes, in any mode). Only a complete, unprofiled, non-dry run with
the plan's own sizes rewrites the generated part of RESULTS.md. A benchmark that fails
becomes a row saying so, and the exit status is then 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import cli_bench, growth, node_bench, portal_bench, processing, smtp_bench
from bench.plan import DRY, FULL, QUICK, Plan
from bench.report import Row, generated_section, load_average, render_table, write_results

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BENCHMARKS: dict[str, Callable[[Plan, bool], list[Row]]] = {
    "smtp": smtp_bench.run,
    "node": node_bench.run,
    "processing": processing.run,
    "portal": lambda plan, _profile: portal_bench.run(plan),
    "memory": lambda plan, _profile: growth.run_memory(plan),
    "growth": lambda plan, _profile: growth.run_growth(plan),
    "cli": cli_bench.run,
}


def counts(value: str) -> tuple[int, int]:
    """`SMALL,LARGE` from the command line, e.g. `2000,20000`."""
    small, _, large = value.partition(",")
    try:
        pair = int(small), int(large)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SMALL,LARGE (two whole numbers), got {value!r}") from None
    if not 0 < pair[0] < pair[1]:
        raise argparse.ArgumentTypeError(f"expected 0 < SMALL < LARGE, got {value!r}")
    return pair


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the short run (under two minutes)")
    parser.add_argument("--dry", action="store_true", help="start everything, measure nothing heavy")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only these (repeatable)")
    parser.add_argument("--profile", action="store_true", help="profile Wicket with pyinstrument into bench/out/")
    parser.add_argument("--memory-counts", type=counts, metavar="SMALL,LARGE", help="messages for the memory run")
    parser.add_argument("--growth-counts", type=counts, metavar="SMALL,LARGE", help="stored messages for growth")
    options = parser.parse_args()
    plan = DRY if options.dry else QUICK if options.quick else FULL
    sizes = {"memory_counts": options.memory_counts, "growth_counts": options.growth_counts}
    resized = {name: pair for name, pair in sizes.items() if pair}
    plan = dataclasses.replace(plan, **resized)
    chosen = options.only or list(BENCHMARKS)
    started, load, clock = datetime.now(UTC), load_average(), time.perf_counter()
    rows: list[Row] = []
    failed = False
    for name in chosen:
        print(f"== {name} ({plan.mode})", file=sys.stderr, flush=True)
        try:
            section = BENCHMARKS[name](plan, options.profile)
        except Exception as error:  # a broken benchmark is reported, and the others still run
            traceback.print_exc()
            section = [Row(name, note=f"FAILED: {type(error).__name__}: {error}")]
            failed = True
        # Each section's rows as soon as it ends: a long run stopped halfway keeps what it measured.
        print(render_table(section), file=sys.stderr, flush=True)
        rows += section
    elapsed = time.perf_counter() - clock
    print(render_table(rows))
    print(f"\n{plan.mode} run: {elapsed:.0f} s", file=sys.stderr)
    if not (plan.dry or options.only or options.profile or resized):
        section = generated_section(rows, plan.mode, smtp_bench.generator_name() + "; wrk (HTTP)", started,
                                    elapsed, load)
        write_results(RESULTS, section)
        print(f"wrote {RESULTS}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
