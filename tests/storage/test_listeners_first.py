"""On SQLite, a background writer waits while an SMTP listener commits (or waits to), so
processing never starves the 250s; listeners never wait for one another at this gate."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from gateway.storage.sqlite import ListenersFirst


def test_a_background_writer_gives_way_while_a_listener_commits_and_listeners_share(tmp_path: Path) -> None:
    url = make_url(f"sqlite+aiosqlite:///{tmp_path / 'wicket.db'}")
    listener, other_listener, background = ListenersFirst(url), ListenersFirst(url), ListenersFirst(url)
    passed = threading.Event()

    def give_way() -> None:
        background.give_way()
        passed.set()

    try:
        with listener.listening():
            with other_listener.listening():  # a second listener does not wait for the first
                pass
            waiting = threading.Thread(target=give_way)
            waiting.start()
            time.sleep(0.3)
            assert not passed.is_set(), "the background writer went ahead of a committing listener"
        assert passed.wait(5), "the background writer never got its turn"
        waiting.join()
    finally:
        for gate in (listener, other_listener, background):
            gate.close()


def test_a_database_in_memory_has_no_gate() -> None:
    gate = ListenersFirst(make_url("sqlite+aiosqlite:///:memory:"))
    with gate.listening():
        gate.give_way()  # nothing to wait for, and no file was made
    gate.close()
