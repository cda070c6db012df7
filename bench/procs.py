"""Benchmark servers in processes of their own, and the line protocol they answer in.

A server child (`python -m bench.serve KIND …`) prints one `READY {json}` line once it
listens and one `DONE {json}` line after SIGTERM, with what it counted; its stderr goes
to a log file under bench/out/. `Child` starts one, waits for those lines with a
deadline, reads its CPU time and resident memory from /proc, and always stops it, so a failed
benchmark never leaves a server behind.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


class ChildFailed(RuntimeError):
    """A benchmark child exited or went silent before answering."""


class Child:
    """One `bench.serve` server process; use it as a context manager."""

    def __init__(self, name: str, *args: str, ready_timeout: float = 60.0) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = OUT / f"{name}.log"
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.serve", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.ready: dict[str, Any] = self._expect("READY", ready_timeout)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def port(self) -> int:
        return int(self.ready["port"])

    def memory_kib(self) -> tuple[int, int]:
        """Resident set size now and its high-water mark (VmRSS, VmHWM) in KiB, summed over
        the server and the processes it started (the processor's parse worker)."""
        fields = {"VmRSS": 0, "VmHWM": 0}
        for pid in _with_descendants(self.pid):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in fields:
                    fields[key] += int(value.split()[0])
        return fields["VmRSS"], fields["VmHWM"]

    def cpu_seconds(self) -> float:
        """User plus system CPU time the child has used so far, all its threads together."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        """SIGTERM, then the child's final counts."""
        if self._proc.poll() is not None:
            raise ChildFailed(f"{self.name} had already exited ({self._proc.returncode}); see {self.log_path}")
        self._proc.send_signal(signal.SIGTERM)
        try:
            return self._expect("DONE", timeout)
        finally:
            self._reap()

    def _expect(self, tag: str, timeout: float) -> dict[str, Any]:
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self._proc.stdout], [], [], left)
            if not readable:
                break
            line = self._proc.stdout.readline()
            if not line:
                self._reap()
                raise ChildFailed(f"{self.name} exited before {tag}; see {self.log_path}")
            word, _, payload = line.decode().partition(" ")
            if word == tag:
                return dict(json.loads(payload))
        self._reap()
        raise ChildFailed(f"{self.name} sent no {tag} within {timeout:.0f}s; see {self.log_path}")

    def _reap(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._log.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._proc.poll() is None:
            self._reap()


def _with_descendants(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += _with_descendants(int(child))
    return found


def announce(tag: str, **payload: Any) -> None:
    """Child side: one protocol line on stdout."""
    sys.stdout.write(f"{tag} {json.dumps(payload)}\n")
    sys.stdout.flush()


def tool_env() -> dict[str, str]:
    """The environment for tools unpacked by setup.sh (smtp-source's private libraries)."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = str(ROOT / "bench" / ".tools" / "usr" / "lib" / "postfix")
    return env


def run_job(module: str, *args: str, timeout: float) -> dict[str, Any]:
    """Run `python -m module args` in a process of its own; its RESULT line, parsed."""
    OUT.mkdir(parents=True, exist_ok=True)
    log_path = OUT / f"{module.rpartition('.')[2]}.log"
    with log_path.open("wb") as log:
        done = subprocess.run(
            [sys.executable, "-m", module, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=log, timeout=timeout
        )
    for line in done.stdout.decode().splitlines():
        word, _, payload = line.partition(" ")
        if word == "RESULT":
            return dict(json.loads(payload))
    raise ChildFailed(f"{module} exited {done.returncode} without a RESULT; see {log_path}")
