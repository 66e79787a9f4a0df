"""``openwatch migrate``'s pre-migration backup against the real server (.ci/pg-start, port 5432).

The upgrade is the real one (45 -> 46, the embedded set), the dumps are real pg_dump custom archives,
and the failures are real ones: a table pg_dump may not read, a directory others can enter, no pg_dump.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest
from conftest import ROOT, TEST_PASSWORD, TEST_ROLE, Database, first_migrations, host_port, run_openwatch
from pgcluster import schema_dump

from openwatch.migrations import backup

pytestmark = pytest.mark.pg

MIGRATIONS = ROOT / "migrations"
BACKUP_LINE = re.compile(
    r"^backed up to (?P<path>/\S+/openwatch_(?P<f>\d{4})-(?P<t>\d{4})_\d{8}T\d{6}Z(?:-\d+)?\.dump) "
    r"\((?P<size>[\d.]+ (?:B|KiB|MiB|GiB)), (?P<secs>\d+\.\d) s\)$"
)
DATA = (
    "INSERT INTO hosts (hostname, address, port) VALUES "
    "('web01', '192.0.2.10', 22), ('db01', '192.0.2.11', 5432);"
    "INSERT INTO users (username) VALUES ('alice'), ('bob');"
)


def first(n: int, dest: Path, extra: dict[str, str] | None = None) -> Path:
    """A --dir holding migrations 1..n (plus extra files)."""
    first_migrations(n, dest)
    for name, text in (extra or {}).items():
        (dest / name).write_text(text)
    return dest


def ow(db: Database, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_openwatch("migrate", *args, env={"OPENWATCH_DATABASE_DSN": db.dsn, **env})


def q(db: Database, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db.admin_dsn, autocommit=True) as conn:
        cur = conn.execute(sql)  # type: ignore[arg-type]  # literal test SQL
        return cur.fetchall() if cur.description else []


def data_dump(db: Database) -> str:
    r = subprocess.run(
        ["pg_dump", "--data-only", "--exclude-table-data=goose_db_version", db.admin_dsn],
        capture_output=True,
        text=True,
        check=True,
    )
    return "".join(line + "\n" for line in r.stdout.splitlines() if not line.startswith(("\\", "--")))


def at(db: Database, n: int, tmp_path: Path) -> None:
    """Migrated to n by an earlier run, holding data, as an operator's database is."""
    r = ow(db, "--dir", str(first(n, tmp_path / f"m{n}")))
    assert r.returncode == 0, r.stderr
    assert "backed up" not in r.stdout  # version 0: nothing to back up
    q(db, DATA)


def broken(name: str) -> str:
    """The real file with a failing statement after all of its Up work."""
    return (MIGRATIONS / name).read_text().replace("-- +goose Down", "SELECT 1 / 0;\n-- +goose Down", 1)


def guide_lines(db: Database) -> list[str]:
    masked = f"postgres://{TEST_ROLE}:***@{host_port()}/{db.name}?sslmode=disable"
    names = sorted(p.name for p in MIGRATIONS.glob("*.sql"))
    return [
        f"applying migrations against {masked} ...",
        "current version: 46",
        "migration files: 46",
        *[f"- {n}" for n in names],
        "migrations applied",
    ]


def version(db: Database) -> int:
    return int(q(db, "SELECT max(version_id) FROM goose_db_version WHERE is_applied")[0][0])  # type: ignore[arg-type]


def test_real_upgrade_45_to_46_is_backed_up_first_and_the_dump_restores(
    fresh_db: Database, tmp_path: Path
) -> None:
    at(fresh_db, 45, tmp_path)
    before_schema, before_data = schema_dump(fresh_db.admin_dsn), data_dump(fresh_db)
    dest = tmp_path / "backups" / "nested"

    # Watch what pg_dump is given: a shim that records its argv and environment, then runs the real one.
    real = backup.find_tools(15, "15", None)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "pg_dump").write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" >> {tmp_path}/argv\nenv >> {tmp_path}/env\n'
        f'exec {real.pg_dump} "$@"\n'
    )
    (shim / "pg_dump").chmod(0o755)
    (shim / "pg_restore").symlink_to(real.pg_restore)

    r = ow(
        fresh_db,
        "--backup-dir",
        str(dest),
        OPENWATCH_BACKUP_PG_BINDIR=str(shim),
        PGPASSWORD="not-this-one",
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    m = BACKUP_LINE.match(lines[0])
    assert m, lines[0]
    assert (m["f"], m["t"]) == ("0045", "0046")
    assert lines[1:] == guide_lines(fresh_db)
    assert version(fresh_db) == 46

    dump = Path(m["path"])
    assert dump.parent == dest and [p.name for p in dest.iterdir()] == [dump.name]  # no partial left
    st = dump.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700

    # the password reached pg_dump neither on its command line nor in its environment
    argv, env = (tmp_path / "argv").read_text(), (tmp_path / "env").read_text()
    for secret in (TEST_PASSWORD, "p%26ss", "not-this-one"):
        assert secret not in argv and secret not in env
    assert "--format=custom" in argv.splitlines()
    assert re.search(r"^PGPASSFILE=/proc/self/fd/\d+$", env, re.M), env
    assert "PGPASSWORD" not in env

    # the dump is the version-45 database: restored into an empty database, it is exactly that
    target = q_create(fresh_db)
    try:
        rr = subprocess.run(
            ["pg_restore", "--exit-on-error", "-d", target.admin_dsn, str(dump)],
            capture_output=True,
            text=True,
        )
        assert rr.returncode == 0, rr.stderr
        assert schema_dump(target.admin_dsn) == before_schema
        assert data_dump(target) == before_data
    finally:
        from conftest import drop_database

        drop_database(target.name)

    # nothing pending: no backup, and the guide's lines alone
    again = ow(fresh_db, "--backup-dir", str(dest))
    assert again.returncode == 0 and again.stdout.splitlines() == guide_lines(fresh_db), again.stdout
    assert len(list(dest.iterdir())) == 1


def q_create(db: Database) -> Database:
    from conftest import make_database

    return make_database("owrestore")


def test_failed_migration_says_how_to_restore_and_the_command_brings_back_schema_and_data(
    fresh_db: Database, tmp_path: Path
) -> None:
    at(fresh_db, 45, tmp_path)
    before_schema, before_data = schema_dump(fresh_db.admin_dsn), data_dump(fresh_db)
    d = first(45, tmp_path / "m46bad", {"0046_report_schedules.sql": broken("0046_report_schedules.sql")})
    r = ow(fresh_db, "--dir", str(d), "--backup-dir", str(tmp_path / "b"))
    assert r.returncode == 1
    assert BACKUP_LINE.match(r.stdout.splitlines()[0])
    dump = Path(BACKUP_LINE.match(r.stdout.splitlines()[0])["path"])  # type: ignore[index]
    err = [line for line in r.stderr.splitlines() if line.startswith("openwatch migrate: ")]
    assert err[0] == "openwatch migrate: up: 0046_report_schedules.sql: division by zero (SQLSTATE 22012)"
    assert err[1] == f"openwatch migrate: the database was backed up before this migrate: {dump}"
    command = err[2].removeprefix("openwatch migrate: to return to that backup: ")
    assert command == (
        f'pg_restore --clean --if-exists --single-transaction -d "$OPENWATCH_DATABASE_DSN" {dump}'
    )
    assert TEST_PASSWORD not in r.stderr and "p%26ss" not in r.stderr

    # The operator damages things further by hand, then runs the printed command as printed.
    q(fresh_db, "DELETE FROM users WHERE username = 'bob'; UPDATE hosts SET port = 2222")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "OPENWATCH_"))}
    env["OPENWATCH_DATABASE_DSN"] = fresh_db.dsn
    rr = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True)
    assert rr.returncode == 0, rr.stderr
    assert schema_dump(fresh_db.admin_dsn) == before_schema
    assert data_dump(fresh_db) == before_data
    assert version(fresh_db) == 45


@pytest.mark.parametrize(
    ("start", "bad", "said"),
    [
        # 44 and 45 commit, 46 fails: 44's table references reports and hosts, which the dump holds.
        (
            43,
            "0046_report_schedules.sql",
            "this migrate applied 0044_report_exception_kind.sql, "
            "0045_report_remediation_kind.sql before the failure",
        ),
        # The first file of the run fails, but outside a transaction: its column and index stay.
        (
            38,
            "0039_job_queue_available_at.sql",
            "0039_job_queue_available_at.sql runs outside a transaction and may have kept part of its work",
        ),
    ],
    ids=["two-committed-before-the-failure", "no-transaction-partial"],
)
def test_after_work_the_dump_does_not_hold_the_printed_restore_is_still_exact(
    fresh_db: Database, tmp_path: Path, start: int, bad: str, said: str
) -> None:
    at(fresh_db, start, tmp_path)
    before_schema, before_data = schema_dump(fresh_db.admin_dsn), data_dump(fresh_db)
    upto = int(bad[:4])
    d = first(upto - 1, tmp_path / "next", {bad: broken(bad)})
    r = ow(fresh_db, "--dir", str(d), "--backup-dir", str(tmp_path / "b"))
    assert r.returncode == 1
    dump = Path(BACKUP_LINE.match(r.stdout.splitlines()[0])["path"])  # type: ignore[index]
    err = [line for line in r.stderr.splitlines() if line.startswith("openwatch migrate: ")]
    assert err[0] == f"openwatch migrate: up: {bad}: division by zero (SQLSTATE 22012)"
    # (a NO TRANSACTION file's own line about its kept statements comes between)
    assert err[-3] == f"openwatch migrate: the database was backed up before this migrate: {dump}"
    assert err[-2] == (
        f"openwatch migrate: {said}; the backup holds none of it, so the restore empties the database first"
    )
    command = err[-1].removeprefix("openwatch migrate: to return to that backup: ")
    assert command == backup.clean_restore_command(dump)
    assert schema_dump(fresh_db.admin_dsn) != before_schema  # the run did leave work behind

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "OPENWATCH_"))}
    env["OPENWATCH_DATABASE_DSN"] = fresh_db.dsn
    if start == 43:
        # Why the plain --clean restore is not printed here: it cannot drop what 44's table references,
        # and being one transaction it changes nothing.
        left = schema_dump(fresh_db.admin_dsn)
        plain = subprocess.run(
            ["sh", "-c", backup.restore_command(dump)], env=env, capture_output=True, text=True
        )
        assert plain.returncode != 0 and "depend" in plain.stderr, plain.stderr
        assert schema_dump(fresh_db.admin_dsn) == left

    rr = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True)
    assert rr.returncode == 0, rr.stderr
    assert rr.stdout == ""
    assert schema_dump(fresh_db.admin_dsn) == before_schema
    assert data_dump(fresh_db) == before_data
    assert version(fresh_db) == start


def test_no_pg_dump_is_refused_before_anything_changes(fresh_db: Database, tmp_path: Path) -> None:
    at(fresh_db, 45, tmp_path)
    before = schema_dump(fresh_db.admin_dsn)
    empty = tmp_path / "nobin"
    empty.mkdir()
    r = ow(fresh_db, "--backup-dir", str(tmp_path / "b"), OPENWATCH_BACKUP_PG_BINDIR=str(empty))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"openwatch migrate: cannot back up before migrating: no pg_dump found in {empty} "
        "([backup] pg_bindir); "
        "install postgresql-client-15 (Debian, Ubuntu) or postgresql15 (RHEL and PGDG RPMs), "
        "or pass --no-backup to migrate without a backup"
    ]
    assert r.stdout == ""
    assert version(fresh_db) == 45 and schema_dump(fresh_db.admin_dsn) == before
    assert not (tmp_path / "b").exists()


def test_a_failing_pg_dump_is_one_line_and_nothing_is_migrated(fresh_db: Database, tmp_path: Path) -> None:
    at(fresh_db, 45, tmp_path)
    # the Go peer's lesson: a table the migration role may not read makes pg_dump (run as that role) fail
    q(fresh_db, "CREATE TABLE zz_superuser_only (x int); REVOKE ALL ON zz_superuser_only FROM PUBLIC")
    before = schema_dump(fresh_db.admin_dsn)
    dest = tmp_path / "b"
    r = ow(fresh_db, "--backup-dir", str(dest))
    assert r.returncode == 1
    (line,) = r.stderr.splitlines()
    assert line.startswith("openwatch migrate: pg_dump 15.")
    assert "permission denied for table zz_superuser_only" in line and line.endswith("nothing was migrated")
    assert r.stdout == ""
    assert version(fresh_db) == 45 and schema_dump(fresh_db.admin_dsn) == before
    assert list(dest.iterdir()) == []  # the partial dump is gone, no final name was ever given


def test_a_directory_open_to_others_is_refused(fresh_db: Database, tmp_path: Path) -> None:
    at(fresh_db, 45, tmp_path)
    dest = tmp_path / "open"
    dest.mkdir(mode=0o755)
    dest.chmod(0o755)
    r = ow(fresh_db, "--backup-dir", str(dest))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"openwatch migrate: backup directory {dest} is open to other users (mode 0755): a dump holds every "
        f"secret in the database; chmod 0700 {dest}"
    ]
    assert version(fresh_db) == 45


def test_no_backup_says_so_in_one_line_and_migrates(fresh_db: Database, tmp_path: Path) -> None:
    at(fresh_db, 45, tmp_path)
    r = ow(fresh_db, "--no-backup", OPENWATCH_BACKUP_DIR=str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == guide_lines(fresh_db)
    said = [line for line in r.stderr.splitlines() if not line.startswith(("OK", "EMPTY"))]
    assert said == ["openwatch migrate: --no-backup: migrating version 45 to 46 without a backup"]
    assert not (tmp_path / "b").exists()


def test_only_the_newest_keep_dumps_stay(fresh_db: Database, tmp_path: Path) -> None:
    r = ow(fresh_db, "--dir", str(first(40, tmp_path / "m40")))
    assert r.returncode == 0, r.stderr
    dest = tmp_path / "b"
    written = []
    for n in range(41, 45):
        r = ow(
            fresh_db,
            "--dir",
            str(first(n, tmp_path / f"m{n}")),
            OPENWATCH_BACKUP_DIR=str(dest),
            OPENWATCH_BACKUP_KEEP="2",
        )
        assert r.returncode == 0, r.stderr
        m = BACKUP_LINE.match(r.stdout.splitlines()[0])
        assert m and int(m["t"]) == n
        written.append(Path(m["path"]))
        assert written[-1].exists()
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in written[-2:])
