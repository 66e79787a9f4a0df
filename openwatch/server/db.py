"""PostgreSQL for the server: a small bounded pool, the startup connection and the schema guard.

Every message that can carry a driver's text is scrubbed of the DSN's password before it leaves here.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

import psycopg

from openwatch import config
from openwatch.migrations import store

T = TypeVar("T")

CONNECT_TIMEOUT = 2  # seconds; libpq's minimum
POOL_WAIT = 2.0  # seconds a request waits for a free connection before it gets 503
STATEMENT_TIMEOUT_MS = 5000  # the server cancels any statement running longer
APPLICATION_NAME = "openwatch-serve"


class Stop(Protocol):
    """What the startup retry waits on: ``app.StopRequest`` (set by SIGTERM) or a ``threading.Event``."""

    def wait(self, timeout: float | None = None) -> bool: ...


class DatabaseUnavailable(Exception):
    """The database cannot be reached (or no connection is free); the message is scrubbed."""


def one_line(exc: BaseException, dsn: str) -> str:
    """A driver error as one line, the password removed in every form it could take."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip()) or type(exc).__name__
    return config.scrub(text, dsn)


def connect(dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(
        dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT, application_name=APPLICATION_NAME
    )
    # Set per connection, not in the DSN: an operator's own ``options`` stay as they are. A hung server
    # cannot enforce it: the web layer's per-request deadline covers that case.
    conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
    conn.execute(f"SET idle_in_transaction_session_timeout = {STATEMENT_TIMEOUT_MS * 2}")
    return conn


def connect_with_retry(dsn: str, budget: float, stop: Stop) -> psycopg.Connection | None:
    """Connect, retrying for ``budget`` seconds; None when ``stop`` is set meanwhile.

    Raises DatabaseUnavailable with the last reason once the budget is spent.
    """
    deadline = time.monotonic() + budget
    delay = 0.25
    while True:
        try:
            return connect(dsn)
        except psycopg.OperationalError as exc:
            reason = one_line(exc, dsn)
        if time.monotonic() + delay > deadline:
            raise DatabaseUnavailable(reason)
        if stop.wait(delay):
            return None
        delay = min(delay * 2, 1.0)


def schema_version(conn: psycopg.Connection) -> int:
    """The applied goose version; a database without goose_db_version is at version 0."""
    return store.db_version(conn) or 0


def schema_problem(current: int, expected: int) -> str | None:
    """Why a database at ``current`` cannot be served by a binary whose migrations end at ``expected``."""
    if current < expected:
        return f"schema version {current} is behind this binary ({expected}): run 'openwatch migrate'"
    if current > expected:
        return f"database schema {current} is newer than this binary's {expected}: upgrade openwatch"
    return None


class Pool:
    """At most ``size`` connections, handed out one per request, reused LIFO.

    A connection that fails with an OperationalError is dropped, and so are the idle ones (after a
    database restart they are all dead); a read is retried once on a fresh connection.
    """

    def __init__(self, dsn: str, size: int, wait: float = POOL_WAIT) -> None:
        self._dsn = dsn
        self._size = size
        self._wait = wait
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[psycopg.Connection] = []
        self._closed = False

    def adopt(self, conn: psycopg.Connection) -> None:
        """Keep an already open connection (the startup one) for reuse."""
        self._give_back(conn)

    def run(self, work: Callable[[psycopg.Connection], T], *, retry: bool = True) -> T:
        """``work(conn)`` on a pooled connection; DatabaseUnavailable when the database is not there.

        Other database errors (constraint violations, ...) propagate and the connection is kept.
        """
        if not self._slots.acquire(timeout=self._wait):
            raise DatabaseUnavailable(f"all {self._size} database connections are busy")
        try:
            attempts = 2 if retry else 1
            for attempt in range(attempts):
                conn, reused = self._take()
                try:
                    result = work(conn)
                except psycopg.OperationalError as exc:
                    self._close(conn)
                    self._drop_idle()
                    if reused and attempt + 1 < attempts:
                        continue
                    raise DatabaseUnavailable(one_line(exc, self._dsn)) from None
                except BaseException:
                    self._give_back(conn)
                    raise
                self._give_back(conn)
                return result
            raise AssertionError("unreachable")
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._drop_idle()

    def _take(self) -> tuple[psycopg.Connection, bool]:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed and not conn.broken:
                    return conn, True
        try:
            return connect(self._dsn), False
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(one_line(exc, self._dsn)) from None

    def _give_back(self, conn: psycopg.Connection) -> None:
        healthy = not conn.closed and not conn.broken
        if healthy and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            healthy = False
        with self._lock:
            if healthy and not self._closed and len(self._idle) < self._size:
                self._idle.append(conn)
                return
        self._close(conn)

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._close(conn)

    @staticmethod
    def _close(conn: psycopg.Connection) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection may fail in any way
            conn.close()
