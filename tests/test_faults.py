"""Faults around `openwatch migrate`: the server going away, unreachable hosts, refused logins.

Each fault must give one clear error line naming the masked DSN (the password never appears in any
form), exit non-zero, and leave no partial migration; once the fault is fixed, a rerun completes.
Stopping a server is done on a private cluster (tests/pgcluster.py), never on the shared one.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from tests.conftest import ROOT, TEST_PASSWORD, TEST_ROLE, Database, host_port
from tests.pgcluster import (
    Cluster,
    free_port,
    invalid_indexes,
    migrate,
    openwatch_cmd,
    openwatch_env,
    query,
    throwaway_cluster,
)

pytestmark = [pytest.mark.pg]

SECRET_PIECES = (TEST_PASSWORD, quote(TEST_PASSWORD, safe=""), "w0rd", "p&ss")
SLOW = {
    "0001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n",
    "0002_slow.sql": (
        "-- +goose Up\nCREATE TABLE slow (id int);\nINSERT INTO slow VALUES (1);\nSELECT pg_sleep(2);\n"
        "-- +goose Down\nDROP TABLE slow;\n"
    ),
    "0003_c.sql": "-- +goose Up\nCREATE TABLE c (id int);\n",
}


def goose_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "m"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def spawn(dsn: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        openwatch_cmd("migrate", *args),
        env=openwatch_env(dsn),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def masked(dsn: str) -> str:
    """The DSN as the app must show it: the password replaced by ***."""
    scheme, rest = dsn.split("://", 1)
    userinfo, tail = rest.rsplit("@", 1)
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{tail}"


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith(("OK ", "EMPTY "))]


def assert_one_clear_line(r: subprocess.CompletedProcess[str], dsn: str) -> str:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    for text in (r.stdout, r.stderr):
        for piece in SECRET_PIECES:
            assert piece not in text, f"secret piece {piece!r} leaked: {text!r}"
    lines = error_lines(r.stderr)
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("openwatch migrate: "), lines[0]
    assert masked(dsn) in lines[0], f"the error line does not name the masked DSN {masked(dsn)}: {lines[0]}"
    return lines[0]


def wait_active(admin_dsn: str, like: str, timeout: float = 30) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rows = query(
            admin_dsn,
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE '"
            + like.replace("'", "''")
            + "'",
        )
        if rows:
            return int(rows[0][0])
        time.sleep(0.02)
    raise TimeoutError(f"no active query like {like!r}")


def versions(admin_dsn: str) -> list[int]:
    return [int(r[0]) for r in query(admin_dsn, "SELECT version_id FROM goose_db_version ORDER BY id")]


def tables(admin_dsn: str) -> list[str]:
    return [
        str(r[0]) for r in query(admin_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    ]


# --------------------------------------------------------------------------------------------------
# the database goes away mid-run


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as c:
        c.execute(f"CREATE ROLE {TEST_ROLE} LOGIN PASSWORD '{TEST_PASSWORD.replace(chr(39), chr(39) * 2)}'")
        c.execute(f"CREATE DATABASE ow OWNER {TEST_ROLE}")
        yield c


@pytest.mark.slow
def test_server_stopped_immediate_mid_migration(cluster: Cluster, tmp_path: Path) -> None:
    d = goose_dir(tmp_path, SLOW)
    dsn = cluster.dsn_for(TEST_ROLE, TEST_PASSWORD, "ow")
    proc = spawn(dsn, "--dir", str(d))
    wait_active(cluster.admin_dsn("ow"), "SELECT pg_sleep(2)%")
    cluster.stop("immediate")
    out, err = proc.communicate(timeout=60)
    line = assert_one_clear_line(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), dsn)
    assert "0002_slow.sql" in line, line

    cluster.start()  # crash recovery: 0002 never committed
    assert versions(cluster.admin_dsn("ow")) == [0, 1]
    assert "slow" not in tables(cluster.admin_dsn("ow"))
    rerun = migrate(dsn, "--dir", str(d))
    assert rerun.returncode == 0, rerun.stderr
    assert versions(cluster.admin_dsn("ow")) == [0, 1, 2, 3]
    assert query(cluster.admin_dsn("ow"), "SELECT * FROM slow") == [(1,)]


@pytest.mark.slow
def test_server_down_before_connect_then_up(cluster: Cluster, tmp_path: Path) -> None:
    d = goose_dir(tmp_path, {"0001_a.sql": SLOW["0001_a.sql"]})
    dsn = cluster.dsn_for(TEST_ROLE, TEST_PASSWORD, "ow")
    cluster.stop("fast")
    line = assert_one_clear_line(migrate(dsn, "--dir", str(d), "--timeout", "5"), dsn)
    assert line.startswith(f"openwatch migrate: connect {masked(dsn)}: "), line
    cluster.start()
    assert migrate(dsn, "--dir", str(d)).returncode == 0
    assert versions(cluster.admin_dsn("ow")) == [0, 1]


def test_backend_terminated_mid_migration(fresh_db: Database, tmp_path: Path) -> None:
    d = goose_dir(tmp_path, SLOW)
    proc = spawn(fresh_db.dsn, "--dir", str(d))
    pid = wait_active(fresh_db.admin_dsn, "SELECT pg_sleep(2)%")
    query(fresh_db.admin_dsn, f"SELECT pg_terminate_backend({pid})")
    out, err = proc.communicate(timeout=60)
    line = assert_one_clear_line(
        subprocess.CompletedProcess(proc.args, proc.returncode, out, err), fresh_db.dsn
    )
    assert "0002_slow.sql" in line and "57P01" in line, line
    assert versions(fresh_db.admin_dsn) == [0, 1]
    assert "slow" not in tables(fresh_db.admin_dsn)
    rerun = migrate(fresh_db.dsn, "--dir", str(d))
    assert rerun.returncode == 0, rerun.stderr
    assert versions(fresh_db.admin_dsn) == [0, 1, 2, 3]


# --------------------------------------------------------------------------------------------------
# the database cannot be reached or refuses us


def _with(dsn: str, *, host: str | None = None, password: str | None = None, db: str | None = None) -> str:
    userinfo, rest = dsn.split("://", 1)[1].rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    hostport, tail = rest.split("/", 1)
    dbname, query_part = tail.split("?", 1)
    pw = quote(password, safe="") if password is not None else userinfo.split(":", 1)[1]
    return f"postgres://{user}:{pw}@{host or hostport}/{db or dbname}?{query_part}"


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("closed-port", "Connection refused"),
        ("unresolvable-host", "resolve"),
        ("wrong-password", "password authentication failed"),
        ("no-such-database", "does not exist"),
    ],
)
def test_connect_fault_one_line_then_fixed(
    fresh_db: Database, tmp_path: Path, fault: str, reason: str
) -> None:
    d = goose_dir(tmp_path, {"0001_a.sql": SLOW["0001_a.sql"]})
    bad = {
        "closed-port": _with(fresh_db.dsn, host=f"127.0.0.1:{free_port()}"),
        "unresolvable-host": _with(fresh_db.dsn, host="openwatch-db.invalid:5432"),
        "wrong-password": _with(fresh_db.dsn, password=TEST_PASSWORD + "-wrong&#"),
        "no-such-database": _with(fresh_db.dsn, db=fresh_db.name + "_absent"),
    }[fault]
    started = time.monotonic()
    r = migrate(bad, "--dir", str(d), "--timeout", "10")
    elapsed = time.monotonic() - started
    line = assert_one_clear_line(r, bad)
    assert line.startswith(f"openwatch migrate: connect {masked(bad)}: "), line
    assert reason in line, line
    assert "-wrong" not in line  # the wrong password is a secret too
    assert elapsed < 15
    assert r.stdout == ""  # no "applying migrations against ..." before a connection exists
    assert query(fresh_db.admin_dsn, "SELECT to_regclass('goose_db_version')") == [(None,)]
    fixed = migrate(fresh_db.dsn, "--dir", str(d))
    assert fixed.returncode == 0, fixed.stderr
    assert versions(fresh_db.admin_dsn) == [0, 1]


def test_wrong_password_when_shared_server_has_role(fresh_db: Database) -> None:
    """The refused login names the user and the masked DSN, so the operator knows which secret to fix."""
    bad = _with(fresh_db.dsn, password="not it")
    r = migrate(bad, "--timeout", "10")
    line = assert_one_clear_line(r, bad)
    assert f'password authentication failed for user "{TEST_ROLE}"' in line
    assert f"@{host_port()}/" in line


# --------------------------------------------------------------------------------------------------
# CREATE INDEX CONCURRENTLY interrupted: PostgreSQL leaves an INVALID index behind


CIC = {
    "0001_items.sql": (
        "-- +goose Up\nCREATE TABLE items (id int PRIMARY KEY, a int);\n"
        "INSERT INTO items SELECT g, g FROM generate_series(1, 1000) g;\n"
    ),
    "0002_idx.sql": (
        "-- +goose NO TRANSACTION\n-- +goose Up\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_a ON items (a);\n"
        "CREATE TABLE later (id int);\n"
        "-- +goose Down\nDROP TABLE later;\nDROP INDEX CONCURRENTLY IF EXISTS items_a;\n"
    ),
}


def _terminate_cic(db: Database, d: Path) -> subprocess.CompletedProcess[str]:
    """Run 0002 while an old snapshot makes CREATE INDEX CONCURRENTLY wait, then terminate it."""
    assert migrate(db.dsn, "--dir", str(d / "first")).returncode == 0
    with psycopg.connect(db.admin_dsn) as blocker:  # an open REPEATABLE READ snapshot: CIC must wait
        blocker.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        blocker.execute("SELECT count(*) FROM items")
        proc = spawn(db.dsn, "--dir", str(d / "all"))
        end = time.monotonic() + 30
        pid = 0
        while time.monotonic() < end and not pid:
            rows = query(
                db.admin_dsn,
                "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' "
                "AND wait_event_type = 'Lock'",
            )
            pid = int(rows[0][0]) if rows else 0
            time.sleep(0.02)
        assert pid, "CREATE INDEX CONCURRENTLY never waited"
        query(db.admin_dsn, f"SELECT pg_terminate_backend({pid})")
        out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _cic_dirs(tmp_path: Path) -> Path:
    first = tmp_path / "first"
    first.mkdir()
    (first / "0001_items.sql").write_text(CIC["0001_items.sql"])
    every = tmp_path / "all"
    every.mkdir()
    for name, text in CIC.items():
        (every / name).write_text(text)
    return tmp_path


def test_terminated_concurrent_index_is_named_in_the_advice(fresh_db: Database, tmp_path: Path) -> None:
    """The advice after the failure must name the INVALID index the interrupted statement left."""
    r = _terminate_cic(fresh_db, _cic_dirs(tmp_path))
    assert r.returncode == 1
    assert invalid_indexes(fresh_db.admin_dsn) == ["items_a"]  # PostgreSQL's doing, not ours
    assert versions(fresh_db.admin_dsn) == [0, 1]
    advice = error_lines(r.stderr)[-1]
    assert "NO TRANSACTION" in advice
    assert "items_a" in advice and "DROP INDEX" in advice, (
        f"the advice does not say to drop the INVALID index items_a before rerunning: {advice}"
    )


def test_rerun_never_records_a_version_over_an_invalid_index(fresh_db: Database, tmp_path: Path) -> None:
    """Rerunning as advised must not mark 0002 applied while its index is INVALID (IF NOT EXISTS skips it)."""
    d = _cic_dirs(tmp_path)
    assert _terminate_cic(fresh_db, d).returncode == 1
    rerun = migrate(fresh_db.dsn, "--dir", str(d / "all"))
    recorded = versions(fresh_db.admin_dsn)
    bad = invalid_indexes(fresh_db.admin_dsn)
    assert not (rerun.returncode == 0 and 2 in recorded and bad), (
        f"0002_idx.sql recorded as applied while index(es) {bad} are INVALID; migrate said: {rerun.stderr}"
    )


def test_operator_recovery_after_terminated_concurrent_index(fresh_db: Database, tmp_path: Path) -> None:
    """docs/recovery.md's procedure: drop the INVALID index, rerun: the index is built and valid."""
    d = _cic_dirs(tmp_path)
    assert _terminate_cic(fresh_db, d).returncode == 1
    for name in invalid_indexes(fresh_db.admin_dsn):
        query(fresh_db.admin_dsn, f"DROP INDEX CONCURRENTLY {name}")
    rerun = migrate(fresh_db.dsn, "--dir", str(d / "all"))
    assert rerun.returncode == 0, rerun.stderr
    assert versions(fresh_db.admin_dsn) == [0, 1, 2]
    assert invalid_indexes(fresh_db.admin_dsn) == []
    assert query(fresh_db.admin_dsn, "SELECT count(*) FROM pg_indexes WHERE indexname = 'items_a'") == [(1,)]
