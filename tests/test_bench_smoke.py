"""The benchmark harness still imports and starts: `bench/run --quick --dry` exits 0 with its table.

No benchmark runs in `make test`; this only catches a harness broken by a change elsewhere
(a renamed function, a server that no longer starts). It needs neither smtp-source nor wrk.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import HEADER

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_dry_quick_run_starts_every_benchmark_and_prints_the_table() -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    command = [str(ROOT / "bench" / "run"), "--quick", "--dry"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    assert HEADER in done.stdout
    assert "FAILED" not in done.stdout
