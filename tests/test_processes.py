"""A child process stays only while the processes it depends on do (gateway/processes.py).

A parse worker works for its parent. A node's role process works for the supervisor but is
forked by the supervisor's fork server, so it names the supervisor as its owner.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
from collections.abc import Iterator

import pytest

from gateway.processes import die_with_parent, is_running


def _child_of(parent: int) -> None:
    die_with_parent(parent)
    raise SystemExit(0)  # still here: the parent was found running


def _working_for(owner: int) -> None:
    die_with_parent(os.getppid(), owner=owner)
    raise SystemExit(0)  # still here: the owner was found running


@pytest.fixture
def exited() -> Iterator[int]:
    """The number of a process that has exited and been reaped."""
    process = subprocess.Popen(["true"])
    process.wait()
    yield process.pid


@pytest.fixture
def zombie() -> Iterator[int]:
    """A process that has exited and is not reaped yet: it still has its number."""
    process = subprocess.Popen(["true"])
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # exited; left for `wait` below
    yield process.pid
    process.wait()


def _exit_code(method: str, target: object, arg: int) -> int | None:
    child = multiprocessing.get_context(method).Process(target=target, args=(arg,))
    child.start()
    child.join(60)
    return child.exitcode


def test_a_spawned_child_runs_while_its_parent_does() -> None:
    assert _exit_code("spawn", _child_of, os.getpid()) == 0


def test_a_child_whose_parent_is_not_the_one_named_exits_at_once(exited: int) -> None:
    assert _exit_code("spawn", _child_of, exited) == 1


def test_a_forked_child_runs_while_its_owner_does() -> None:
    # The fork server is its parent; this test's process is the owner.
    assert _exit_code("forkserver", _working_for, os.getpid()) == 0


def test_a_child_whose_owner_is_gone_exits_at_once(exited: int) -> None:
    assert _exit_code("forkserver", _working_for, exited) == 1


def test_an_owner_that_exited_but_is_not_reaped_is_gone(zombie: int) -> None:
    assert not is_running(zombie)
    assert is_running(os.getpid())
    assert _exit_code("forkserver", _working_for, zombie) == 1
