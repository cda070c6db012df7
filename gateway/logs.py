"""Logging: one JSON object per line in production, readable text in a terminal.

`log_context` carries ids for the work in hand (the inbound email being processed, the
HTTP request being served); every record logged inside `bound(...)` carries them. Secrets
never reach a record: tokens and codes are not passed to loggers in the first place, and
the portal's access log redacts link paths.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

# Libraries whose chatter is never wanted, even with --verbose: mail-parser logs every odd
# header as an error; aiosqlite's debug lines quote every SQL parameter (mail text holding
# magic links), so they stay off.
QUIET_LOGGERS = {"mailparser": logging.CRITICAL, "aiosqlite": logging.INFO}

log_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})


@contextlib.contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """Attach ids (e.g. inbound_id=12, request_id="…") to every record logged inside."""
    token = log_context.set({**log_context.get(), **ids})
    try:
        yield
    finally:
        log_context.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **log_context.get(),
        }
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str, ensure_ascii=False)


class ContextTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = log_context.get()
        return text + ("  " + " ".join(f"{k}={v}" for k, v in ids.items()) if ids else "")


def configure_logging(fmt: str, level: int) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(ContextTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name, quiet in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet)
    logging.getLogger("mail.log").setLevel(max(level, logging.WARNING))  # aiosmtpd logs every command
