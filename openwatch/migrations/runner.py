"""apply / status / plan (dry run) against PostgreSQL, goose v3 compatible.

apply, in order:
1. parse every file of the set, both directions (like goose's Provider): a parse error applies nothing;
2. connect (one connection, autocommit; every message masks the DSN's password), and refuse a server
   older than the schema runs on (``openwatch.pgsupport``; a warning line for an old or untested one);
3. take goose's session advisory lock ``pg_try_advisory_lock(4097083626)`` on that connection, polled,
   saying once on stderr that we wait; a goose Provider with its default SessionLocker serialises
   with us;
4. refuse a database ahead of the set, and (unless ``--allow-missing``) versions missing below the
   database's maximum;
5. when something is pending on a schema that exists (version > 0), back it up (``backup``: pg_dump,
   verified) before anything changes; a backup that cannot be taken stops here, nothing changed;
6. ensure ``goose_db_version`` (goose's DDL and version-0 row, one transaction) and our checksum table;
   then apply the missing ones (ascending), then the new ones (ascending);
7. each file in its own transaction with its version row; NO TRANSACTION files in autocommit on the
   same connection, the version row written only once every statement succeeded.

The whole command is bounded by one deadline: a watchdog cancels the running statement when it
passes, so the file in flight rolls back and the database stays at the last fully applied version.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import psycopg
from psycopg.conninfo import conninfo_to_dict

from openwatch import pgsupport
from openwatch.config import mask_dsn, scrub
from openwatch.migrations import backup, sqlparse, store
from openwatch.migrations.source import MigrationFile, MigrationSet, SourceError

LOCK_ID = 4097083626  # goose's lock.DefaultLockID (CRC-32 of "goose")
LOCK_POLL = 0.5  # seconds between pg_try_advisory_lock attempts
APP_NAME = "openwatch migrate"
PROG = "openwatch migrate"


class MigrateError(Exception):
    """Failure lines for stderr (the CLI prefixes each with the command)."""

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[0] if lines else "")
        self.lines = list(lines)


class _Abort(Exception):
    """Lines describing why the run stopped (failure or deadline), raised below the lock."""


@dataclass(frozen=True)
class Planned:
    file: MigrationFile
    parsed: sqlparse.ParsedSQL


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _duration(seconds: float) -> str:
    """Roughly Go's Duration.String after goose's rounding: 1.23s, 12.35ms, 456.78µs."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale:
            text = f"{seconds / scale:.2f}".rstrip("0").rstrip(".")
            return text + unit
    return f"{seconds * 1e9:.0f}ns"


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def extend(self, seconds: float) -> None:
        self.end += seconds


class _Watchdog:
    """Cancels the connection's running statement when the deadline passes."""

    def __init__(self, conn: psycopg.Connection[Any], deadline: _Deadline) -> None:
        self.conn = conn
        self.fired = threading.Event()
        self._timer = threading.Timer(max(deadline.remaining(), 0.0), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired.set()
        # best effort; the main thread checks the deadline between statements too
        with contextlib.suppress(Exception):
            self.conn.cancel_safe(timeout=5)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    @contextlib.contextmanager
    def paused(self, deadline: _Deadline) -> Iterator[None]:
        """The deadline stands still while the block runs (the backup: its own bound is pg_dump's)."""
        self._timer.cancel()
        started = time.monotonic()
        try:
            yield
        finally:
            deadline.extend(time.monotonic() - started)
            self._timer = threading.Timer(max(deadline.remaining(), 0.0), self._fire)
            self._timer.daemon = True
            self._timer.start()

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in str(text).strip().splitlines() if part.strip())


def _pg_message(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    sqlstate = getattr(exc, "sqlstate", None)
    if primary:
        return f"{primary} (SQLSTATE {sqlstate})" if sqlstate else primary
    return _one_line(str(exc)) or type(exc).__name__


def _is_lost(conn: psycopg.Connection[Any]) -> bool:
    """The session is gone (server stopped or crashed, backend terminated, network cut)."""
    return bool(conn.closed or conn.broken)


def _lost(dsn: str, doing: str, exc: BaseException) -> str:
    return f"the connection to {mask_dsn(dsn)} was lost while {doing}: {_pg_message(exc)}"


def _drop_advice(names: list[str]) -> str:
    drops = " ".join(f"DROP INDEX CONCURRENTLY {n};" for n in names)
    return (
        f"PostgreSQL left INVALID index(es) {', '.join(names)} (an interrupted CREATE INDEX CONCURRENTLY, "
        f"which IF NOT EXISTS would skip rather than rebuild): run {drops} and then"
    )


def _invalid_indexes_after(conn: psycopg.Connection[Any], dsn: str) -> list[str] | None:
    """The current schema's INVALID indexes after a failure; on a fresh session when ours is gone.
    None when they cannot be read (the server is unreachable)."""
    try:
        if not _is_lost(conn):
            return store.invalid_indexes(conn)
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3, application_name=APP_NAME) as fresh:
            return store.invalid_indexes(fresh)
    except Exception:  # best effort: the advice then says how to look for them
        return None


def _connect(
    dsn: str, deadline: _Deadline, *, read_only: bool, err: TextIO | None
) -> psycopg.Connection[Any]:
    """The connection, after the server-version preflight (refusal raised, warning printed on err)."""
    try:
        conn = psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=max(2, math.ceil(deadline.remaining())),
            application_name=APP_NAME,
        )
    except Exception as exc:  # any failure to connect is reported the same way
        reason = _one_line(str(exc)) or type(exc).__name__
        raise MigrateError(f"connect {mask_dsn(dsn)}: {reason}") from None
    try:
        warning = pgsupport.check(conn.info.server_version)
    except pgsupport.TooOld as exc:
        conn.close()
        raise MigrateError(str(exc)) from None
    if warning and err is not None:
        print(f"{PROG}: warning: {warning}", file=err, flush=True)
    if read_only:
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    return conn


def _parse_error_line(exc: sqlparse.ParseError) -> str:
    """``file:line: message`` on one line. goose's message may carry the source line after a newline
    (ENVSUB failures: ``variable substitution failed: ...:\n<line>``); it is folded in as ``(line: ...)``.
    """
    head, newline, rest = exc.goose_message.partition("\n")
    message = head
    if newline and (text := _one_line(rest)):
        message = f"{head.rstrip()} (line: {text})"
    return f"{exc.filename}:{exc.line}: {message}"


def parse_all(mset: MigrationSet) -> dict[int, sqlparse.ParsedSQL]:
    """Every file, both directions; the first error raises MigrateError as ``file:line: message``."""
    out: dict[int, sqlparse.ParsedSQL] = {}
    for mf in mset.files:
        try:
            text = sqlparse.decode(mf.read_bytes(), mf.name)
            up = sqlparse.parse(text, "up", filename=mf.name)
            sqlparse.parse(text, "down", filename=mf.name)
        except sqlparse.ParseError as exc:
            raise MigrateError(_parse_error_line(exc)) from None
        except (OSError, SourceError) as exc:
            raise MigrateError(f"{mf.name}: {exc}") from None
        out[mf.version] = up
    return out


def compute_plan(
    mset: MigrationSet, applied: dict[int, store.Applied], *, allow_missing: bool
) -> tuple[int, list[MigrationFile]]:
    """(database version, files to apply in order); refuses a database ahead or with gaps."""
    done = {v for v, a in applied.items() if a.is_applied and v != 0}
    files = mset.by_version()
    db_max = max(done, default=0)
    unknown = sorted(done - files.keys())
    if unknown:
        listed = ", ".join(str(v) for v in unknown)
        if db_max > mset.head:
            raise MigrateError(
                f"the database schema (version {db_max}) is newer than this binary (head {mset.head}): "
                f"upgrade openwatch (applied versions not in this binary: {listed})"
            )
        raise MigrateError(
            f"the database has applied version(s) {listed} that this binary does not contain "
            f"(head {mset.head}); refusing to migrate: a migration was removed or renumbered"
        )
    missing = [f for f in mset.files if f.version not in done and f.version < db_max]
    if missing and not allow_missing:
        names = ", ".join(f"version {f.version}: {f.name}" for f in missing)
        raise MigrateError(
            f"found {len(missing)} missing migrations before current version {db_max}: {names}; "
            "rerun with --allow-missing to apply them first"
        )
    new = [f for f in mset.files if f.version not in done and f.version > db_max]
    return db_max, missing + new


def _guard(dsn: str, fn: Callable[[], int]) -> int:
    """Run fn; scrub the password from any failure text, whatever produced it."""
    try:
        return fn()
    except MigrateError as exc:
        raise MigrateError(*(scrub(line, dsn) for line in exc.lines)) from None


# --------------------------------------------------------------------------------------------------
# apply


def apply(
    mset: MigrationSet,
    dsn: str,
    *,
    timeout: float,
    allow_missing: bool,
    out: TextIO,
    err: TextIO,
    backup_settings: backup.Settings | None = None,
) -> int:
    return _guard(dsn, lambda: _apply(mset, dsn, timeout, allow_missing, out, err, backup_settings))


def _apply(
    mset: MigrationSet,
    dsn: str,
    timeout: float,
    allow_missing: bool,
    out: TextIO,
    err: TextIO,
    settings: backup.Settings | None,
) -> int:
    deadline = _Deadline(timeout)
    parsed = parse_all(mset)
    conn = _connect(dsn, deadline, read_only=False, err=err)
    locked = False
    taken: backup.Result | None = None
    try:
        with _Watchdog(conn, deadline) as dog:
            phase = "waiting for the migration lock"
            try:
                _lock(conn, deadline, dog, err)
                locked = True
                phase = "reading goose_db_version"
                exists = store.table_exists(conn)
                applied = store.applied_versions(conn) if exists else {}
                current, todo = compute_plan(mset, applied, allow_missing=allow_missing)
                if todo and current > 0 and settings is not None:
                    phase = "backing up"
                    target = max(current, *(mf.version for mf in todo))
                    with dog.paused(deadline):
                        taken = _backup(conn, dsn, settings, current, target, timeout, err)
                    if taken is not None:
                        print(taken.line(), file=out, flush=True)
                print(f"applying migrations against {mask_dsn(dsn)} ...", file=out, flush=True)
                phase = "preparing goose_db_version"
                if not exists:
                    store.create_table(conn)
                store.ensure_checksum_table(conn)
                done_here: list[MigrationFile] = []
                for mf in todo:
                    phase = f"applying {mf.name}"
                    try:
                        _apply_one(conn, mf, parsed[mf.version], deadline, dog, dsn, err, current)
                    except _Abort as exc:
                        partial = not parsed[mf.version].use_tx
                        advice = _restore_advice(taken, done_here, mf if partial else None)
                        raise _Abort(*exc.args, *advice) from None
                    done_here.append(mf)
                    current = max(current, mf.version)
                phase = "reading the version"
                final = store.db_version(conn) or 0
            except _Abort as exc:
                raise MigrateError(*exc.args) from None
            except psycopg.Error as exc:
                if dog.fired.is_set():
                    raise MigrateError(f"timed out after {_seconds(timeout)} {phase}") from None
                if _is_lost(conn):
                    raise MigrateError(
                        f"{_lost(dsn, phase, exc)}; rerun openwatch migrate once the server is back"
                    ) from None
                raise MigrateError(f"{phase}: {_pg_message(exc)}") from None
    finally:
        if locked:
            with contextlib.suppress(psycopg.Error):  # closing the session releases it anyway
                conn.execute(f"SELECT pg_advisory_unlock({LOCK_ID})")
        conn.close()

    print(f"current version: {final}", file=out)
    print(f"migration files: {len(mset.files)}", file=out)
    for mf in mset.files:
        print(f"- {mf.name}", file=out)
    print("migrations applied", file=out, flush=True)
    return 0


def _backup(
    conn: psycopg.Connection[Any],
    dsn: str,
    settings: backup.Settings,
    current: int,
    target: int,
    timeout: float,
    err: TextIO,
) -> backup.Result | None:
    """The pre-migration dump, or None when the operator turned it off (said in one line)."""
    if settings.disabled:
        print(
            f"{PROG}: --no-backup: migrating version {current} to {target} without a backup",
            file=err,
            flush=True,
        )
        return None
    if settings.directory is None:
        # Nothing configured (no openwatch.toml, which sets [backup] dir, and no --backup-dir): the
        # goose-compatible behaviour, silent, so scripted runs keep goose's output.
        return None
    server = conn.info.server_version
    try:
        tools = backup.find_tools(
            pgsupport.major_of(server), pgsupport.version_text(server), settings.pg_bindir
        )
        return backup.take(
            tools=tools,
            # what the operator wrote (the driver's resolved parameters would name keywords the bundled
            # libpq knows and an older pg_dump does not); PG* variables reach pg_dump as they reached us
            params={k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None},
            password=conn.info.password,
            directory=settings.directory,
            from_version=current,
            to_version=target,
            keep=settings.keep,
            lock_timeout=timeout,
        )
    except backup.BackupError as exc:
        raise _Abort(str(exc)) from None
    except subprocess.TimeoutExpired as exc:
        raise _Abort(
            f"{exc.cmd[0]} did not finish in {_seconds(exc.timeout)}; nothing was migrated"
        ) from None


def _restore_advice(
    taken: backup.Result | None, done_here: list[MigrationFile], partial: MigrationFile | None
) -> list[str]:
    """After a failed file: where the pre-migration backup is and the command that restores it.

    ``pg_restore --clean`` drops only the objects the dump holds. That is exact when the failed file
    was the first of this run and ran in a transaction (it rolled back). Files this run committed
    before it, or a NO TRANSACTION file's finished statements, made objects the dump does not know:
    a table referencing a dumped one even makes --clean fail. Then the database is emptied of the
    role's objects first, so the restore lands on the guide's "clean database".
    """
    if taken is None:
        return []
    lines = [f"the database was backed up before this migrate: {taken.path}"]
    if not done_here and partial is None:
        return [*lines, f"to return to that backup: {backup.restore_command(taken.path)}"]
    left = []
    if done_here:
        left.append(f"this migrate applied {', '.join(mf.name for mf in done_here)} before the failure")
    if partial is not None:
        left.append(f"{partial.name} runs outside a transaction and may have kept part of its work")
    lines.append("; ".join(left) + "; the backup holds none of it, so the restore empties the database first")
    return [*lines, f"to return to that backup: {backup.clean_restore_command(taken.path)}"]


def _lock_holder(conn: psycopg.Connection[Any]) -> str:
    try:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 "
            f"AND objid::bigint = {LOCK_ID} AND objsubid = 1 AND granted"
        ).fetchall()
    except psycopg.Error:
        return ""
    return ", held by pid " + ", ".join(str(r[0]) for r in rows) if rows else ""


def _lock(conn: psycopg.Connection[Any], deadline: _Deadline, dog: _Watchdog, err: TextIO) -> None:
    said = False
    holder = ""
    while True:
        try:
            row = conn.execute(f"SELECT pg_try_advisory_lock({LOCK_ID})").fetchone()
        except psycopg.errors.QueryCanceled:
            if not dog.fired.is_set():
                raise
            # the watchdog's cancel landed on this poll: the deadline passed while waiting, which is
            # reported below as such (with the holder), not as a bare "timed out ... waiting"
            row = None
        if row and row[0]:
            return
        if not said:
            holder = _lock_holder(conn)
            print(
                f"openwatch migrate: waiting for the migration lock (advisory lock {LOCK_ID}{holder}): "
                "another openwatch migrate or goose is running; "
                f"giving up after {_seconds(deadline.seconds)}",
                file=err,
                flush=True,
            )
            said = True
        if deadline.expired() or dog.fired.is_set():
            raise _Abort(
                f"timed out after {_seconds(deadline.seconds)} waiting for the migration lock "
                f"(advisory lock {LOCK_ID}{holder}); nothing was applied. Another migration is running "
                "against this database: let it finish, then rerun"
            )
        time.sleep(max(0.0, min(LOCK_POLL, deadline.remaining())))


def _apply_one(
    conn: psycopg.Connection[Any],
    mf: MigrationFile,
    parsed: sqlparse.ParsedSQL,
    deadline: _Deadline,
    dog: _Watchdog,
    dsn: str,
    err: TextIO,
    current: int,
) -> None:
    started = time.perf_counter()
    done = 0
    total = len(parsed.statements)
    committing = False

    def check() -> None:
        if deadline.expired() or dog.fired.is_set():
            raise psycopg.errors.QueryCanceled("deadline passed")

    try:
        if parsed.use_tx:
            with conn.transaction():
                for stmt in parsed.statements:
                    check()
                    conn.execute(stmt)  # no params: simple query protocol, multi-command statements work
                    done += 1
                check()
                store.record(conn, mf.version, mf.name, mf.sha256)
                committing = True  # leaving the block commits
        else:
            for stmt in parsed.statements:
                check()
                conn.execute(stmt)
                done += 1
            check()
            invalid = store.invalid_indexes(conn)
            if invalid:
                # IF NOT EXISTS skipped an index an earlier interrupted run left INVALID: recording the
                # version would claim a schema that is not there
                raise _Abort(
                    scrub(
                        f"refusing to record version {mf.version} ({mf.name}, a NO TRANSACTION migration) "
                        f"while INVALID index(es) exist; its statements ran and stay applied, and the "
                        f"database is at version {current}; {_drop_advice(invalid)} rerun openwatch migrate",
                        dsn,
                    )
                )
            with conn.transaction():
                store.record(conn, mf.version, mf.name, mf.sha256)
    except psycopg.Error as exc:
        raise _Abort(
            *(
                scrub(line, dsn)
                for line in _failure_lines(
                    conn, mf, parsed, deadline, dog, dsn, current, done, committing, exc
                )
            )
        ) from None
    kind = "OK  " if total else "EMPTY"  # goose: "OK   name", "EMPTY name"
    print(f"{kind} {mf.name} ({_duration(time.perf_counter() - started)})", file=err, flush=True)


def _failure_lines(
    conn: psycopg.Connection[Any],
    mf: MigrationFile,
    parsed: sqlparse.ParsedSQL,
    deadline: _Deadline,
    dog: _Watchdog,
    dsn: str,
    current: int,
    done: int,
    committing: bool,
    exc: psycopg.Error,
) -> list[str]:
    """What to tell the operator after ``mf`` failed: the cause, the database's version, what to do."""
    total = len(parsed.statements)
    timed_out = dog.fired.is_set() or deadline.expired()
    lost = not timed_out and _is_lost(conn)
    invalid: list[str] | None = [] if parsed.use_tx else _invalid_indexes_after(conn, dsn)
    if invalid:
        drop = f"; {_drop_advice(invalid)}"
    elif invalid is None and "CONCURRENTLY" in " ".join(parsed.statements).upper():
        drop = (
            "; it may have left an INVALID index (list them with SELECT indexrelid::regclass FROM pg_index "
            "WHERE NOT indisvalid;): run DROP INDEX CONCURRENTLY <name>; for each and then"
        )
    else:
        drop = "; then"
    if lost:
        if parsed.use_tx:
            state = f"the database is at version {current} ({mf.name} rolled back)"
            if committing:
                state = (
                    f"the database is at version {current} ({mf.name} rolled back), or at version "
                    f"{mf.version} if the server received the commit before the connection dropped"
                )
            return [
                f"{_lost(dsn, f'applying {mf.name}', exc)}; {state}; rerun openwatch migrate once the server "
                "is back"
            ]
        return [
            f"{_lost(dsn, f'applying {mf.name}', exc)}; the database is at version {current}: {mf.name} is a "
            f"NO TRANSACTION migration, its first {done} of {total} statement(s) ran before the failure (the "
            f"one in flight may have completed too) and stay applied, and version {mf.version} was not "
            f"recorded{drop} rerun openwatch migrate once the server is back (it runs {mf.name} again from "
            "its first statement, so its statements must be idempotent, e.g. IF NOT EXISTS)"
        ]
    if timed_out:
        head = (
            f"timed out after {_seconds(deadline.seconds)} applying {mf.name}: the running statement was "
            f"cancelled"
        )
        if parsed.use_tx:
            lines = [f"{head} and {mf.name} rolled back; the database is at version {current}"]
        else:
            lines = [f"{head}; the database is at version {current}"]
    else:
        lines = [f"up: {mf.name}: {_pg_message(exc)}"]
    if not parsed.use_tx:
        lines.append(
            f"{mf.name} is a NO TRANSACTION migration: its first {done} of {total} statement(s) ran "
            f"before the failure and stay applied, and version {mf.version} was not recorded; fix the "
            f"cause{drop} rerun openwatch migrate, which runs {mf.name} again from its first statement "
            "(its statements must be idempotent, e.g. IF NOT EXISTS)"
        )
    return lines


# --------------------------------------------------------------------------------------------------
# status


def status(mset: MigrationSet, dsn: str, *, timeout: float, out: TextIO, err: TextIO | None = None) -> int:
    return _guard(dsn, lambda: _status(mset, dsn, timeout, out, err))


@dataclass(frozen=True)
class _Snapshot:
    """What status and --dry-run read, on a read-only connection: they never create the version table."""

    exists: bool
    applied: dict[int, store.Applied]
    sums: dict[int, str]


def _read_snapshot(dsn: str, timeout: float, err: TextIO | None) -> _Snapshot:
    deadline = _Deadline(timeout)
    conn = _connect(dsn, deadline, read_only=True, err=err)
    try:
        with _Watchdog(conn, deadline) as dog:
            try:
                exists = store.table_exists(conn)
                return _Snapshot(
                    exists=exists,
                    applied=store.applied_versions(conn) if exists else {},
                    sums=store.checksums(conn) if exists else {},
                )
            except psycopg.Error as exc:
                if dog.fired.is_set():
                    raise MigrateError(
                        f"timed out after {_seconds(timeout)} reading goose_db_version"
                    ) from None
                raise MigrateError(f"reading goose_db_version: {_pg_message(exc)}") from None
    finally:
        conn.close()


def _status(mset: MigrationSet, dsn: str, timeout: float, out: TextIO, err: TextIO | None) -> int:
    snap = _read_snapshot(dsn, timeout, err)
    exists, applied, sums = snap.exists, snap.applied, snap.sums

    done = {v for v, a in applied.items() if a.is_applied and v != 0}
    db_max = max(done, default=0)
    print(f"migration status against {mask_dsn(dsn)}", file=out)
    if not exists:
        print("goose_db_version does not exist: nothing has been applied to this database", file=out)
    print("    Applied At                  Migration", file=out)
    print("    " + "=" * 39, file=out)
    edited: list[str] = []
    unknown_sum = 0
    for mf in mset.files:
        row = applied.get(mf.version)
        if row is not None and row.is_applied:
            when = row.tstamp.strftime("%a %b %e %H:%M:%S %Y") if row.tstamp else "(no timestamp)"
            recorded = sums.get(mf.version)
            if recorded is None:
                flag = "  (checksum unknown: applied without openwatch)"
                unknown_sum += 1
            elif recorded != mf.sha256:
                flag = f"  EDITED: sha256 {mf.sha256[:12]} differs from {recorded[:12]} recorded when applied"
                edited.append(mf.name)
            else:
                flag = ""
            print(f"    {when:<24} -- {mf.name}{flag}", file=out)
        else:
            print(f"    {'Pending':<24} -- {mf.name}", file=out)
    pending = [mf for mf in mset.files if mf.version not in done]
    ahead = sorted(done - mset.by_version().keys())
    summary = (
        f"current version: {db_max}; {len(mset.files) - len(pending)} of {len(mset.files)} applied, "
        f"{len(pending)} pending"
    )
    if edited or unknown_sum:
        summary += f"; {len(edited)} edited after being applied, {unknown_sum} without a recorded checksum"
    print(summary, file=out)
    if edited:
        print(f"edited after being applied (add a new migration instead): {', '.join(edited)}", file=out)
    if ahead:
        listed = ", ".join(str(v) for v in ahead)
        if db_max > mset.head:
            print(
                f"the database schema (version {db_max}) is newer than this binary (head {mset.head}): "
                f"upgrade openwatch (applied versions not in this binary: {listed})",
                file=out,
            )
        else:
            print(f"applied versions this binary does not contain: {listed}", file=out)
    missing = [mf.name for mf in pending if mf.version < db_max]
    if missing:
        print(f"missing below the current version (needs --allow-missing): {', '.join(missing)}", file=out)
    out.flush()
    return 0


# --------------------------------------------------------------------------------------------------
# plan (dry run)


def plan(
    mset: MigrationSet,
    dsn: str,
    *,
    timeout: float,
    allow_missing: bool,
    out: TextIO,
    err: TextIO | None = None,
) -> int:
    return _guard(dsn, lambda: _plan(mset, dsn, timeout, allow_missing, out, err))


def _plan(
    mset: MigrationSet, dsn: str, timeout: float, allow_missing: bool, out: TextIO, err: TextIO | None
) -> int:
    parsed = parse_all(mset)
    snap = _read_snapshot(dsn, timeout, err)
    exists = snap.exists
    current, todo = compute_plan(mset, snap.applied, allow_missing=allow_missing)
    print(f"-- openwatch migrate --dry-run against {mask_dsn(dsn)}: nothing is changed", file=out)
    print(f"-- current version: {current}; {len(todo)} migration(s) to apply", file=out)
    if not exists:
        print(
            "-- goose_db_version does not exist: migrate creates it first (goose's DDL, version-0 row)",
            file=out,
        )
    for mf in todo:
        p = parsed[mf.version]
        mode = "true" if p.use_tx else "false (NO TRANSACTION: each statement in autocommit)"
        print(
            f"\n-- {mf.name} (version {mf.version}, use_tx: {mode}, {len(p.statements)} statement(s))",
            file=out,
        )
        for stmt in p.statements:
            print(stmt, file=out)
    out.flush()
    return 0
