"""Parsing ahead: a backlog's messages parsed in a worker process while earlier ones are stored.

Parsing is about a quarter of what processing a message costs and needs no database. When
the processor claims a backlog, `ParseAhead.submit` sends the claimed rows' bytes, a few
messages to a task, to a worker process, which parses them on the other core while the
processing transaction stores the messages before them; `parsed` then hands each message
over when processing gets to it, or parses it inline when the worker has not got there
yet (while the worker starts, for instance): processing never waits for the worker. A
small claim (mail arriving one message at a time) is parsed inline, as shipping it to a
process and back would cost more than it saves, and so is every message once a task has
failed or the worker has died. `parse_email` never raises, so both ways give the same
`ParsedEmail`. `settings.process_parse_workers = 0` parses everything inline. Parsing
includes sanitizing the HTML for display, the costliest part of a big HTML mail.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from gateway.mail.parse import ParsedEmail, parse_email
from gateway.mail.parse.display import DEFAULT_MAX_BYTES
from gateway.processes import die_with_parent

log = logging.getLogger(__name__)

MIN_BACKLOG = 8  # fewer claimed rows than this are parsed inline
MESSAGES_PER_TASK = 8  # one round trip to the worker carries this many messages


def parse_many(raws: list[bytes], max_display_html: int = DEFAULT_MAX_BYTES) -> list[ParsedEmail]:
    """The worker's task: `parse_email` over several messages."""
    return [parse_email(raw, max_display_html=max_display_html) for raw in raws]


def _start_worker(parent: int) -> None:
    die_with_parent(parent)  # a serving process killed outright leaves no worker behind
    # Ctrl-C reaches the whole process group; the serving process decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ParseAhead:
    """The worker processes and the parses they owe for the rows of the current claim."""

    def __init__(self, workers: int, max_display_html: int = DEFAULT_MAX_BYTES) -> None:
        self._workers = workers
        self._max_display_html = max_display_html
        self._pool: ProcessPoolExecutor | None = None
        self._ahead: dict[int, tuple[Future[list[ParsedEmail]], int]] = {}

    def submit(self, rows: Sequence[tuple[int, bytes]]) -> list[Future[list[ParsedEmail]]]:
        """Start parsing a new claim's rows `(inbound id, raw)`; returns the tasks sent, if any.

        The previous claim's parses are forgotten.
        """
        self._ahead = {}
        tasks: list[Future[list[ParsedEmail]]] = []
        if not self._workers or len(rows) < MIN_BACKLOG:
            return tasks
        if self._pool is None:
            # spawn: a forked child would inherit the serving process's threads and locks.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self._workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
            )
        try:
            for start in range(0, len(rows), MESSAGES_PER_TASK):
                task = rows[start : start + MESSAGES_PER_TASK]
                future = self._pool.submit(parse_many, [raw for _, raw in task], self._max_display_html)
                tasks.append(future)
                for index, (row_id, _) in enumerate(task):
                    self._ahead[row_id] = (future, index)
        except Exception as error:  # noqa: BLE001 - the rows not sent are parsed inline
            self._give_up(error)
        return tasks

    def parsed(self, row_id: int, raw: bytes) -> ParsedEmail:
        """Row `row_id` parsed: by the worker if it was sent there, else here and now."""
        ahead = self._ahead.pop(row_id, None)
        if ahead is not None:
            future, index = ahead
            if not future.done():
                # Never wait for the worker (it may still be starting): parse here, and drop
                # the task if the worker has not begun it.
                future.cancel()
            elif not future.cancelled():
                try:
                    return future.result()[index]
                except Exception as error:  # noqa: BLE001 - a dead worker or a failed task: parse here
                    self._give_up(error)
        return parse_email(raw, max_display_html=self._max_display_html)

    def _give_up(self, error: Exception) -> None:
        if self._workers:
            log.warning("parse worker failed (%r); parsing inline from now on", error)
        self._workers = 0
        self._discard_pool()

    def close(self) -> None:
        self._ahead = {}
        self._discard_pool()

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
