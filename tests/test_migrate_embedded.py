"""The embedded set end to end: the guide's exact report, idempotence, and timings."""

from __future__ import annotations

import time

import psycopg

from openwatch.migrations import source
from tests.conftest import TEST_ROLE, Database, host_port, run_openwatch


def test_embedded_set_applies_as_the_guide_shows(fresh_db: Database) -> None:
    mset = source.embedded()
    env = {"OPENWATCH_DATABASE_DSN": fresh_db.dsn}
    started = time.monotonic()
    first = run_openwatch("migrate", env=env)
    first_s = time.monotonic() - started
    assert first.returncode == 0, first.stderr
    masked = f"postgres://{TEST_ROLE}:***@{host_port()}/{fresh_db.name}?sslmode=disable"
    assert first.stdout.splitlines() == [
        f"applying migrations against {masked} ...",
        f"current version: {mset.head}",
        f"migration files: {len(mset.files)}",
        *[f"- {f.name}" for f in mset.files],
        "migrations applied",
    ]
    started = time.monotonic()
    second = run_openwatch("migrate", env=env)
    second_s = time.monotonic() - started
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert second.stderr == ""
    with psycopg.connect(fresh_db.admin_dsn) as conn:
        rows = conn.execute("SELECT version_id FROM goose_db_version ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [0, *[f.version for f in mset.files]]
    status = run_openwatch("migrate", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert (
        f"current version: {mset.head}; {len(mset.files)} of {len(mset.files)} applied, 0 pending"
        in status.stdout
    )
    print(f"\nembedded set: {len(mset.files)} files, first run {first_s:.2f}s, second run {second_s:.2f}s")
