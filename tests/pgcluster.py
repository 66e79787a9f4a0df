"""Throwaway PostgreSQL clusters and database probes for the crash, race and fault tests.

The suite's own server (``suitepg``) is never stopped by a test. A test that stops a server
makes its own cluster here: ``initdb`` + ``pg_ctl`` as the ``postgres`` user, on a free port, with its
socket and data under a temporary directory; the context manager always tears it down (``pg_ctl stop
-m immediate``, then the directory is removed), even when the test fails.

Also here, because several test files need them:

* ``schema_dump``: ``pg_dump --schema-only``, normalised (no comments, no ``SET`` preamble, no
  ``\\restrict`` keys), to compare two databases' schemas as text.
* ``wait_for_backends``: after a client was SIGKILLed its backend runs on until PostgreSQL notices;
  an operator reruns later, so the tests wait for it first (``pg_stat_activity``).
* ``openwatch_cmd``: the command line of the CLI under test: from source, or the frozen binary named
  by ``OPENWATCH_TEST_BINARY``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import psycopg

SUPERUSER_PASSWORD = "postgres"
ROOT = Path(__file__).resolve().parent.parent


def openwatch_cmd(*args: str) -> list[str]:
    """argv for the CLI: ``$OPENWATCH_TEST_BINARY`` when set (the frozen binary), else the source tree."""
    binary = os.environ.get("OPENWATCH_TEST_BINARY")
    return [binary, *args] if binary else [sys.executable, "-m", "openwatch", *args]


def openwatch_env(dsn: str) -> dict[str, str]:
    """A clean environment whose only OpenWatch setting is the DSN (no stray OPENWATCH_* from the caller)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")}
    env["OPENWATCH_DATABASE_DSN"] = dsn
    return env


def migrate(dsn: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`openwatch migrate ARGS` against dsn, waited for."""
    return subprocess.run(
        openwatch_cmd("migrate", *args),
        env=openwatch_env(dsn),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def query(admin_dsn: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one literal test statement (none for a statement without a result)."""
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(sql)  # type: ignore[arg-type]  # literal test SQL
        return cur.fetchall() if cur.description else []


def pg_bindir() -> Path:
    """The server binaries (initdb, pg_ctl) of the distribution's newest PostgreSQL."""
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
    if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
        return Path(out.stdout.strip())
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError("initdb not found: apt-get install postgresql")
    return found[-1].parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        cmd = ("runuser", "-u", "postgres", "--", *cmd)
    # its own session: a Ctrl-C in the terminal reaches pytest (which tears down), not the postmaster
    r = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, start_new_session=True
    )
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
    return r


@dataclass
class Cluster:
    """A private cluster; ``admin_dsn`` for the superuser, ``dsn_for`` for an operator-style URL."""

    base: Path
    port: int
    bindir: Path = field(default_factory=pg_bindir)
    password: str = SUPERUSER_PASSWORD
    max_connections: int = 40

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def logfile(self) -> Path:
        return self.base / "server.log"

    def admin_dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{dbname}"

    def dsn_for(self, role: str, password: str, dbname: str) -> str:
        return f"postgres://{role}:{quote(password, safe='')}@127.0.0.1:{self.port}/{dbname}?sslmode=disable"

    def init(self) -> None:
        pwfile = self.base / "pw"
        pwfile.touch(0o600)
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres")
        _as_postgres(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        pwfile.unlink()

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c full_page_writes=off -c max_connections={self.max_connections}"
        )
        _as_postgres(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        _as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "status"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, check=False).returncode == 0

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        with psycopg.connect(self.admin_dsn(dbname), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(sql)  # type: ignore[arg-type]  # test-controlled literal SQL
            return cur.fetchall() if cur.description else []


@contextlib.contextmanager
def throwaway_cluster(bindir: Path | None = None) -> Iterator[Cluster]:
    """A started private cluster (of ``bindir``'s PostgreSQL, default the distribution's newest); always
    stopped (immediate) and deleted afterwards."""
    base = Path(tempfile.mkdtemp(prefix="ow-pgcluster-"))
    pw = pwd.getpwnam("postgres")
    os.chown(base, pw.pw_uid, pw.pw_gid)
    base.chmod(0o700)
    cluster = Cluster(base=base, port=free_port(), bindir=bindir or pg_bindir())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            if cluster.running():
                cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# probes


def dsn_env(dsn: str) -> tuple[str, dict[str, str]]:
    """(dsn without its password, environment with PGPASSWORD): for libpq tools, so it never reaches argv."""
    parts = urlsplit(dsn)
    env = dict(os.environ)
    if parts.password is None:
        return dsn, env
    env["PGPASSWORD"] = unquote(parts.password)
    netloc = f"{parts.username}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)), env


def schema_dump(admin_dsn: str, *exclude_tables: str) -> str:
    """``pg_dump --schema-only`` without the parts that differ between two equal schemas."""
    cmd = ["pg_dump", "--schema-only"]
    for table in exclude_tables:
        cmd += ["--exclude-table", table]
    dsn, env = dsn_env(admin_dsn)
    r = subprocess.run([*cmd, dsn], capture_output=True, text=True, timeout=120, check=False, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {r.stderr.strip()}")
    keep = []
    for line in r.stdout.splitlines():
        if not line.strip() or line.startswith("--"):
            continue
        if line.startswith(("SET ", "SELECT pg_catalog.set_config(", "\\restrict", "\\unrestrict")):
            continue
        keep.append(line.rstrip())
    return "\n".join(keep) + "\n"


def wait_for_backends(admin_dsn: str, dbname: str, timeout: float = 60) -> float:
    """Seconds waited until no other backend is connected to ``dbname``; raises on timeout."""
    started = time.monotonic()
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchone()
            if row is not None and row[0] == 0:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"backends still connected to {dbname} after {timeout}s")
            time.sleep(0.05)


def invalid_indexes(admin_dsn: str) -> list[str]:
    """INVALID indexes (left by an interrupted CREATE INDEX CONCURRENTLY): pg_dump does not show them."""
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1"
        ).fetchall()
    return [str(r[0]) for r in rows]


def schema_snapshot(admin_dsn: str, *exclude_tables: str) -> str:
    """``schema_dump`` plus the INVALID indexes it leaves out: equal snapshots mean equal schemas."""
    invalid = invalid_indexes(admin_dsn)
    return schema_dump(admin_dsn, *exclude_tables) + (f"-- INVALID indexes: {invalid}\n" if invalid else "")
