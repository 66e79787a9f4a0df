"""One line per event on stdout, as text (``key=value``) or JSON, filtered by level.

Callers pass only what may be shown: request paths without their query string, the DSN masked, never
a header's value (so no token, cookie or password). Whatever a client sent is escaped: a control
character (C0, DEL, C1) is written as ``\\u00XX``, so a path cannot forge a line or drive a terminal.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from typing import Any, TextIO

LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


LEVELS_BY_NUMBER = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\xa0\u2028\u2029\"=\\\\]")
_DEL_C1 = re.compile(r"[\x7f-\x9f]")


def _dumps(value: Any) -> str:
    """JSON, ASCII only; json escapes C0 controls itself, not DEL."""
    return _DEL_C1.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value))


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    if text == "" or _UNSAFE.search(text) or not text.isascii():
        return _dumps(text)
    return text


class Logger:
    def __init__(self, level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
        self.threshold = LEVELS[level]
        self.json = fmt == "json"
        self.stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def log(self, level: str, msg: str, **fields: Any) -> None:
        if LEVELS[level] < self.threshold:
            return
        if self.json:
            line = _dumps({"time": _timestamp(), "level": level, "msg": msg, **fields})
        else:
            pairs = "".join(f" {k}={_text_value(v)}" for k, v in fields.items())
            line = f"{_timestamp()} {level.upper():<5} {msg}{pairs}"
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass  # stdout gone (closed pipe): logging must never take the server down

    def debug(self, msg: str, **fields: Any) -> None:
        self.log("debug", msg, **fields)

    def info(self, msg: str, **fields: Any) -> None:
        self.log("info", msg, **fields)

    def warn(self, msg: str, **fields: Any) -> None:
        self.log("warn", msg, **fields)

    def error(self, msg: str, **fields: Any) -> None:
        self.log("error", msg, **fields)


class LogBridge(logging.Handler):
    """A ``logging`` handler (for hypercorn's error log) writing through a Logger: one escaped line
    each, the message only; a traceback's text (which may quote request data) is left out."""

    def __init__(self, log: Logger) -> None:
        super().__init__()
        self.log = log
        self.logger = logging.getLogger("openwatch.http")
        self.logger.propagate = False
        self.logger.handlers = [self]
        self.logger.setLevel(logging.DEBUG if log.enabled("debug") else logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        level = LEVELS_BY_NUMBER.get(record.levelno, "error")
        try:
            detail = record.getMessage()
        except Exception:  # a bad format string must not take the server down
            detail = str(record.msg)
        fields: dict[str, Any] = {"detail": detail[:500]}
        if record.exc_info and record.exc_info[0] is not None:
            fields["error"] = record.exc_info[0].__name__
        self.log.log(level, "http", **fields)
