"""Concurrent `openwatch migrate` runs serialise on goose's advisory lock (4097083626).

* eight processes started together on an empty database: all exit 0, every version is recorded
  exactly once, and the schema equals a clean apply's;
* a lock held by another session (as a goose Provider with its SessionLocker would hold it) makes
  migrate wait, say so once, and give up with one clear line when ``--timeout`` runs out; released
  in time, migrate proceeds.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from openwatch.migrations import source
from tests.conftest import ROOT, TEST_ROLE, Database, drop_database, host_port, make_database
from tests.pgcluster import migrate, openwatch_cmd, openwatch_env, query, schema_snapshot

pytestmark = [pytest.mark.pg]

LOCK_ID = 4097083626
RACERS = 8


def advisory_holders(db: Database) -> int:
    rows = query(
        db.admin_dsn,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
        f"(SELECT oid FROM pg_database WHERE datname = current_database()) "
        f"AND ((classid::bigint << 32) | objid::bigint) = {LOCK_ID}",
    )
    return int(rows[0][0])


@pytest.mark.slow
def test_eight_migrates_at_once(fresh_db: Database) -> None:
    mset = source.embedded()
    clean = make_database("owclean")
    try:
        assert migrate(clean.dsn).returncode == 0
        expected = schema_snapshot(clean.admin_dsn)
    finally:
        drop_database(clean.name)

    go = threading.Barrier(RACERS)
    results: list[subprocess.CompletedProcess[str] | BaseException] = [RuntimeError("not run")] * RACERS

    def racer(i: int) -> None:
        go.wait()
        try:
            results[i] = migrate(fresh_db.dsn, "--timeout", "120", timeout=180)
        except BaseException as exc:  # reported below with the others
            results[i] = exc

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    masked = f"postgres://{TEST_ROLE}:***@{host_port()}/{fresh_db.name}?sslmode=disable"
    report = [
        f"applying migrations against {masked} ...",
        f"current version: {mset.head}",
        f"migration files: {len(mset.files)}",
        *[f"- {f.name}" for f in mset.files],
        "migrations applied",
    ]
    applied_by: list[list[str]] = []
    for i, r in enumerate(results):
        assert isinstance(r, subprocess.CompletedProcess), f"racer {i}: {r!r}"
        assert r.returncode == 0, f"racer {i}: {r.stderr}"
        assert r.stdout.splitlines() == report, f"racer {i}: {r.stdout}"
        applied_by.append(
            [line.split()[1] for line in r.stderr.splitlines() if line.startswith(("OK", "EMPTY"))]
        )
        for line in r.stderr.splitlines():
            assert line.startswith(("OK ", "EMPTY ", "openwatch migrate: waiting for the migration lock")), (
                line
            )
    # every file was applied by exactly one process, in order, and recorded exactly once
    names = sorted(n for run in applied_by for n in run)
    assert names == [f.name for f in mset.files]
    rows = query(
        fresh_db.admin_dsn, "SELECT version_id, count(*) FROM goose_db_version GROUP BY 1 ORDER BY 1"
    )
    assert rows == [(0, 1), *[(f.version, 1) for f in mset.files]]
    ids = [r[0] for r in query(fresh_db.admin_dsn, "SELECT version_id FROM goose_db_version ORDER BY id")]
    assert ids == [0, *[f.version for f in mset.files]]
    sums = query(
        fresh_db.admin_dsn, "SELECT version_id, sha256 FROM openwatch_migration_checksums ORDER BY 1"
    )
    assert sums == [(f.version, f.sha256) for f in mset.files]
    assert schema_snapshot(fresh_db.admin_dsn) == expected
    assert advisory_holders(fresh_db) == 0  # everyone released the lock
    print(f"\nraces: files applied per process {sorted(len(a) for a in applied_by)}")


def test_lock_held_elsewhere_times_out_with_one_line(fresh_db: Database) -> None:
    with psycopg.connect(fresh_db.admin_dsn, autocommit=True) as holder:
        holder.execute(f"SELECT pg_advisory_lock({LOCK_ID})")
        pid = holder.info.backend_pid
        started = time.monotonic()
        r = migrate(fresh_db.dsn, "--timeout", "1500ms")
        elapsed = time.monotonic() - started
        # still ours: migrate never took it
        assert holder.execute(f"SELECT pg_try_advisory_lock({LOCK_ID})").fetchone() == (True,)
    assert r.returncode == 1
    waiting, failure = r.stderr.splitlines()
    assert waiting == (
        f"openwatch migrate: waiting for the migration lock (advisory lock {LOCK_ID}, held by pid {pid}): "
        "another openwatch migrate or goose is running; giving up after 1.5s"
    )
    assert failure == (
        f"openwatch migrate: timed out after 1.5s waiting for the migration lock (advisory lock {LOCK_ID}, "
        f"held by pid {pid}); nothing was applied. Another migration is running against this database: "
        "let it finish, then rerun"
    )
    assert 1.5 <= elapsed < 8
    assert query(fresh_db.admin_dsn, "SELECT to_regclass('goose_db_version')") == [(None,)]
    # status is read-only and takes no lock: it still answers while a migration holds it
    st = migrate(fresh_db.dsn, "status", "--timeout", "5")
    assert st.returncode == 0, st.stderr


def test_lock_released_before_timeout_then_applies(fresh_db: Database) -> None:
    mset = source.embedded()
    holder = psycopg.connect(fresh_db.admin_dsn, autocommit=True)
    holder.execute(f"SELECT pg_advisory_lock({LOCK_ID})")
    release = threading.Timer(2.0, holder.close)
    release.start()
    try:
        started = time.monotonic()
        r = migrate(fresh_db.dsn, "--timeout", "60")
        elapsed = time.monotonic() - started
    finally:
        release.join()
        holder.close()
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[0].startswith("openwatch migrate: waiting for the migration lock")
    assert elapsed >= 2.0
    assert query(fresh_db.admin_dsn, "SELECT max(version_id) FROM goose_db_version") == [(mset.head,)]
    assert advisory_holders(fresh_db) == 0


def test_lock_holder_with_goose_table_mid_way(fresh_db: Database, tmp_path: Path) -> None:
    """A second migrate arriving while the first holds the lock mid-run applies nothing twice."""
    d = tmp_path / "m"
    d.mkdir()
    (d / "0001_a.sql").write_text("-- +goose Up\nCREATE TABLE a (id int);\n")
    (d / "0002_slow.sql").write_text("-- +goose Up\nCREATE TABLE slow (id int);\nSELECT pg_sleep(1.5);\n")
    (d / "0003_c.sql").write_text("-- +goose Up\nCREATE TABLE c (id int);\n")
    first = subprocess.Popen(
        openwatch_cmd("migrate", "--dir", str(d)),
        env=openwatch_env(fresh_db.dsn),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not query(
            fresh_db.admin_dsn,
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(1.5)%' AND state = 'active'",
        ):
            time.sleep(0.02)
        second = migrate(fresh_db.dsn, "--dir", str(d), "--timeout", "30")
    finally:
        _out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert second.stderr.startswith("openwatch migrate: waiting for the migration lock")
    assert "OK " not in second.stderr  # nothing left for the second one
    rows = query(fresh_db.admin_dsn, "SELECT version_id FROM goose_db_version ORDER BY id")
    assert rows == [(0,), (1,), (2,), (3,)]
