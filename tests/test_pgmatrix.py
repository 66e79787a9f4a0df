"""The PostgreSQL compatibility matrix: the schema and the shipped binary against each supported major.

Each major is the Debian package of the release that ships it (13 bullseye, 15 bookworm, 17 trixie,
18 sid), installed in a cached minbase root (tests/lifecycle/roots.py, ``pg_base``); each test module
run starts that server inside a fresh copy-on-write copy of the root (initdb + pg_ctl as the root's
``postgres`` user, scram-sha-256, on a free 127.0.0.1 port) and always tears it down. The chroot shares
the host's network, so the host's driver reaches it; the FROZEN binary runs inside the root, next to
that release's own pg_dump and pg_restore, as on an operator's Debian host.

On every major: the 46 migrations apply, reverse and re-apply to the same schema (test_schema's round
trip); ``migrate`` backs up and upgrades 45 -> 46; ``migrate status`` and ``--dry-run`` read it; the
dump restores with that major's pg_restore to the exact pre-upgrade schema; ``serve`` answers its health
check; the preflight warns exactly where pgsupport says. On majors newer than the host's pg_dump (15),
the host binary's backup is refused before anything changes (pg_dump older than the server).

Marker ``pgmatrix`` (also ``chroot``, ``slow``): ``nox -s tests -- -m pgmatrix``.
"""

from __future__ import annotations

import re
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import test_schema as schema
from conftest import TEST_PASSWORD, TEST_ROLE, ReleaseBuild, first_migrations, run_openwatch
from lifecycle import roots
from test_serve_harness import free_port, make_cert

from openwatch import pgsupport

pytestmark = [pytest.mark.pgmatrix, pytest.mark.chroot, pytest.mark.slow]

MAJORS = sorted(roots.PG_SUITES)
SUPERUSER_PASSWORD = "postgres"
HOST_PG_DUMP_MAJOR = 15  # the host's postgresql-client (Debian 12, .ci/run)
BACKUP_LINE = re.compile(r"^backed up to (?P<path>/\S+\.dump) \((?P<size>[^,]+), (?P<secs>[\d.]+) s\)$")


@dataclass
class Server:
    major: int
    root: roots.Root
    port: int
    version_num: int

    @property
    def bindir(self) -> str:
        return f"/usr/lib/postgresql/{self.major}/bin"

    def admin_dsn(self, db: str = "postgres") -> str:
        return f"postgresql://postgres:{SUPERUSER_PASSWORD}@127.0.0.1:{self.port}/{db}"

    def dsn(self, db: str) -> str:
        password = quote(TEST_PASSWORD, safe="")
        return f"postgres://{TEST_ROLE}:{password}@127.0.0.1:{self.port}/{db}?sslmode=disable"

    def sql(self, sql: str, db: str = "postgres") -> list[tuple[object, ...]]:
        with psycopg.connect(self.admin_dsn(db), autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(sql)  # type: ignore[arg-type]  # literal test SQL
            return cur.fetchall() if cur.description else []

    def new_db(self, name: str) -> str:
        self.sql(f'CREATE DATABASE "{name}" OWNER {TEST_ROLE}')
        return name

    def schema_dump(self, db: str) -> str:
        """This major's own pg_dump (the host's cannot dump a newer server)."""
        r = self.root.chroot(f"{self.bindir}/pg_dump", "--schema-only", "-d", self.admin_dsn(db))
        return "".join(
            line + "\n"
            for line in r.stdout.splitlines()
            if not line.startswith(("\\restrict", "\\unrestrict", "--")) and line.strip()
        )


@pytest.fixture(scope="session")
def _pg_bases() -> Iterator[dict[int, Future[Path]]]:
    """The four cached roots, built in parallel on first use (debootstrap mostly waits on the mirror):
    a cold cache costs the slowest one (~2.5 min), not their sum."""
    with ThreadPoolExecutor(max_workers=len(MAJORS)) as pool:
        yield {m: pool.submit(roots.base_for, roots.pg_base(m)) for m in MAJORS}


@pytest.fixture(scope="module", params=MAJORS, ids=lambda m: f"pg{m}")
def server(request: pytest.FixtureRequest, _pg_bases: dict[int, Future[Path]]) -> Iterator[Server]:
    major = int(request.param)
    base = _pg_bases[major].result()
    with roots.fresh_root(base, f"pgmatrix{major}") as root:
        bindir = f"/usr/lib/postgresql/{major}/bin"
        root.file("/srv/pg").mkdir(parents=True)
        root.file("/srv/pg/pw").write_text(SUPERUSER_PASSWORD + "\n")
        root.sh("chown -R postgres:postgres /srv/pg && chmod 700 /srv/pg")
        root.chroot(
            f"{bindir}/initdb",
            "-D",
            "/srv/pg/data",
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            "--pwfile=/srv/pg/pw",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
            user="postgres",
        )
        port = free_port()
        opts = f"-p {port} -k /srv/pg -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        root.chroot(
            f"{bindir}/pg_ctl",
            "-D",
            "/srv/pg/data",
            "-l",
            "/srv/pg/log",
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "start",
            user="postgres",
        )
        try:
            s = Server(major=major, root=root, port=port, version_num=0)
            s.version_num = int(s.sql("SELECT current_setting('server_version_num')")[0][0])  # type: ignore[arg-type]
            s.sql(f"CREATE ROLE {TEST_ROLE} LOGIN PASSWORD '{TEST_PASSWORD.replace(chr(39), chr(39) * 2)}'")
            yield s
        finally:
            root.chroot(
                f"{bindir}/pg_ctl",
                "-D",
                "/srv/pg/data",
                "-m",
                "immediate",
                "stop",
                user="postgres",
                check=False,
            )


@pytest.fixture(scope="module")
def binary_in(server: Server, release_build: ReleaseBuild) -> str:
    """The frozen binary the packages ship, installed in the root; migrations 1..45 beside it."""
    frozen = Path(release_build.frozen.path)  # type: ignore[attr-defined]
    server.root.put(frozen, "/usr/bin/openwatch", mode=0o755)
    first_migrations(45, server.root.file("/srv/m45"))
    for name in ("openwatch.toml", "secrets.env"):
        server.root.file(f"/srv/{name}").write_text("")
    return "/usr/bin/openwatch"


def ow(server: Server, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return server.root.chroot(
        "/usr/bin/openwatch",
        *args,
        "--config",
        "/srv/openwatch.toml",
        "--secrets",
        "/srv/secrets.env",
        env=env,
        check=False,
        timeout=300,
    )


def test_the_46_migrations_apply_reverse_and_reapply_to_the_same_schema(server: Server) -> None:
    db = server.new_db("roundtrip")
    migs = schema.load_migrations()
    with psycopg.connect(server.dsn(db), autocommit=True, connect_timeout=10) as conn:
        schema.init_version_table(conn)
        schema.migrate(conn, migs, "up")
        assert schema.current_version(conn) == 46
        schema.check_conventions(conn)
        dump1 = server.schema_dump(db)
        assert dump1.count("CREATE TABLE public.") == 45
        schema.migrate(conn, reversed(migs), "down")
        assert schema.current_version(conn) == 0
        left = [r[0] for r in conn.execute(schema.ROUNDTRIP_LEFTOVERS).fetchall()]
        if server.major < 14:
            # PostgreSQL 13 still gives every sequence a row type: goose's own identity sequence's
            left.remove("type goose_db_version_id_seq")
        assert left == []
        schema.migrate(conn, migs, "up")
        assert server.schema_dump(db) == dump1


def test_migrate_backs_up_status_dry_run_restore_and_serve_with_this_majors_tools(
    server: Server, binary_in: str, tmp_path: Path
) -> None:
    db = server.new_db("upgrade")
    dsn = server.dsn(db)
    warning = pgsupport.check(server.version_num)
    r = ow(server, "migrate", "--dir", "/srv/m45", OPENWATCH_DATABASE_DSN=dsn)
    assert r.returncode == 0, r.stderr
    warned = [line for line in r.stderr.splitlines() if "warning:" in line]
    assert warned == ([f"openwatch migrate: warning: {warning}"] if warning else []), r.stderr
    server.sql("INSERT INTO hosts (hostname, address) VALUES ('web01', '192.0.2.10')", db)
    before = server.schema_dump(db)

    st = ow(server, "migrate", "status", OPENWATCH_DATABASE_DSN=dsn)
    assert st.returncode == 0, st.stderr
    assert "current version: 45; 45 of 46 applied, 1 pending" in st.stdout
    dry = ow(server, "migrate", "--dry-run", OPENWATCH_DATABASE_DSN=dsn)
    assert dry.returncode == 0, dry.stderr
    assert "-- current version: 45; 1 migration(s) to apply" in dry.stdout
    assert "-- 0046_report_schedules.sql" in dry.stdout

    up = ow(server, "migrate", OPENWATCH_DATABASE_DSN=dsn, OPENWATCH_BACKUP_DIR="/var/lib/openwatch/backups")
    assert up.returncode == 0, up.stderr
    m = BACKUP_LINE.match(up.stdout.splitlines()[0])
    assert m, up.stdout
    assert up.stdout.splitlines()[1].startswith("applying migrations against postgres://ow_test:***@")
    assert up.stdout.splitlines()[-1] == "migrations applied"
    assert server.sql("SELECT max(version_id) FROM goose_db_version WHERE is_applied", db) == [(46,)]
    dump = m["path"]
    assert (server.root.file(dump).stat().st_mode & 0o777) == 0o600

    # a dump taken on this major restores with this major's pg_restore, to the exact pre-upgrade schema
    target = server.new_db("restored")
    rr = server.root.chroot(
        f"{server.bindir}/pg_restore", "--exit-on-error", "-d", server.admin_dsn(target), dump, check=False
    )
    assert rr.returncode == 0, rr.stderr
    assert server.schema_dump(target) == before
    assert server.sql("SELECT hostname FROM hosts", target) == [("web01",)]

    # serve, on the migrated schema
    cert, key = make_cert(tmp_path)
    server.root.put(cert, "/srv/cert.pem")
    server.root.put(key, "/srv/key.pem", mode=0o600)
    port = free_port()
    env = {
        "OPENWATCH_DATABASE_DSN": dsn,
        "OPENWATCH_SERVER_LISTEN": f"127.0.0.1:{port}",
        "OPENWATCH_SERVER_TLS_CERT": "/srv/cert.pem",
        "OPENWATCH_SERVER_TLS_KEY": "/srv/key.pem",
    }
    full = {**roots.CLEAN_ENV, **env}
    proc = subprocess.Popen(
        [
            "chroot",
            str(server.root.path),
            "/usr/bin/env",
            "-i",
            *(f"{k}={v}" for k, v in full.items()),
            "/usr/bin/openwatch",
            "serve",
            "--config",
            "/srv/openwatch.toml",
            "--secrets",
            "/srv/secrets.env",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"https://localhost:{port}/api/v1/health", context=ctx, timeout=5
                ) as resp:
                    body = (resp.status, resp.read().decode())
                    break
            except OSError:
                time.sleep(0.3)
        assert body is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert body[0] == 200 and '"status"' in body[1], body
    finally:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    if warning:
        assert warning in out + err


def test_a_host_pg_dump_older_than_the_server_is_refused_before_anything_changes(
    server: Server, tmp_path: Path
) -> None:
    db = server.new_db("olddump")
    dsn = server.dsn(db)
    first = run_openwatch(
        "migrate", "--dir", str(first_migrations(45, tmp_path / "m45")), env={"OPENWATCH_DATABASE_DSN": dsn}
    )
    assert first.returncode == 0, first.stderr
    r = run_openwatch(
        "migrate", env={"OPENWATCH_DATABASE_DSN": dsn, "OPENWATCH_BACKUP_DIR": str(tmp_path / "b")}
    )
    if server.major <= HOST_PG_DUMP_MAJOR:
        # the host's pg_dump 15 dumps this server (pg_dump reads older servers): backed up, migrated
        assert r.returncode == 0, r.stderr
        assert BACKUP_LINE.match(r.stdout.splitlines()[0]), r.stdout
        return
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if "warning:" not in line]
    shown = pgsupport.version_text(server.version_num)
    assert errors == [
        f"openwatch migrate: cannot back up before migrating: pg_dump 15.{_host_minor()} "
        f"(/usr/lib/postgresql/15/bin/pg_dump) is older than the server (PostgreSQL {shown}) and cannot "
        f"dump it; install postgresql-client-{server.major} (Debian, Ubuntu) or postgresql{server.major} "
        "(RHEL and PGDG RPMs), or pass --no-backup to migrate without a backup"
    ], r.stderr
    assert r.stdout == ""
    assert server.sql("SELECT max(version_id) FROM goose_db_version WHERE is_applied", db) == [(45,)]


def _host_minor() -> str:
    out = subprocess.run(
        ["/usr/lib/postgresql/15/bin/pg_dump", "--version"], capture_output=True, text=True, check=True
    ).stdout
    m = re.search(r"\(PostgreSQL\) 15\.(\d+)", out)
    assert m, out
    return m.group(1)


def test_matrix_thresholds_are_what_this_run_covers() -> None:
    """pgsupport's floor and tested list are exactly the matrix's majors (change one, change both)."""
    assert list(pgsupport.TESTED) == MAJORS
    assert MAJORS[0] == pgsupport.MINIMUM
