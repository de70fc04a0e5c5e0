"""Structured logs: one JSON object per line, each carrying the id of the request it was
written in (the `X-Request-ID` response header of that request), so one customer's trouble
can be followed from the load balancer's log to ours.

What goes into a record is the caller's business and the rule is the repository's: never a
secret, token, code or password (tests/test_logs.py holds every logger to it).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from contextvars import ContextVar
from typing import Any

request_id: ContextVar[str | None] = ContextVar("idp_request_id", default=None)

# An id a proxy in front of us already gave the request is kept, if it is a plain token;
# anything else (too long, odd characters that could forge log lines) is replaced.
_INBOUND_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Fields a record may carry beside its message (`log.info(..., extra={...})`).
FIELDS = ("method", "route", "path", "status", "duration_ms", "client_id", "event")


def request_id_from(inbound: str | None) -> str:
    if inbound is not None and _INBOUND_ID.fullmatch(inbound):
        return inbound
    return secrets.token_hex(8)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            line["request_id"] = current
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        current = request_id.get()
        return f"{text} [{current}]" if current is not None else text


def configure(level: str, fmt: str) -> None:
    """The process's logging: every record to stderr, as JSON lines or as text. Uvicorn's
    own loggers go the same way."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else _TextFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
