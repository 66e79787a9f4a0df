"""Shared fixtures: a real PostgreSQL server and the way to run the CLI.

The server is the suite's own throwaway cluster (``suitepg``: initdb in a temporary directory, a free
port, removed at the end), or the existing server ``OPENWATCH_TEST_PG_ADMIN`` names. Tests never mock
it: when it is not usable, they fail with a line saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import suitepg

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
_EXISTING = os.environ.get("OPENWATCH_TEST_PG_ADMIN")
ADMIN_DSN = _EXISTING or suitepg.ADMIN_DSN  # the suite's cluster is started on first connection
# A password with everything a shell or a URL would mangle: the tests prove it survives.
TEST_ROLE = "ow_test"
TEST_PASSWORD = "p&ss w0rd#'\"$x"


@dataclass(frozen=True)
class Database:
    name: str
    dsn: str  # as an operator writes it: postgres://user:pass@host:port/db?sslmode=disable
    admin_dsn: str  # superuser DSN to the same database, for assertions


def _admin_connect(dbname: str = "postgres"):
    import psycopg

    parts = urlsplit(ADMIN_DSN if _EXISTING else suitepg.admin_dsn())
    dsn = urlunsplit(parts._replace(path="/" + dbname))
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin DSN of the running server; fails (never skips) when it is down."""
    try:
        with _admin_connect() as conn:
            conn.execute("SELECT 1")
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (TEST_ROLE,)).fetchone()
            if exists:
                conn.execute(f"ALTER ROLE {TEST_ROLE} LOGIN PASSWORD {_lit(TEST_PASSWORD)}")
            else:
                conn.execute(f"CREATE ROLE {TEST_ROLE} LOGIN PASSWORD {_lit(TEST_PASSWORD)}")
    except Exception as exc:  # any failure means "server not usable"
        where = "OPENWATCH_TEST_PG_ADMIN" if _EXISTING else "the suite's throwaway cluster"
        pytest.fail(f"PostgreSQL not usable at {ADMIN_DSN.split('@')[-1]} ({where}): {exc}")
    return ADMIN_DSN


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    suitepg.stop()  # also after failures and Ctrl-C; atexit and SIGTERM/SIGHUP are covered in suitepg


# Measured on a 2-core machine (see README "The two commands"): said before the run, so nobody waits blind.
_FIRST_RUN = "a first run on a fresh machine makes the bullseye build root and the Debian test roots too"


def pytest_collection_finish(session: pytest.Session) -> None:
    cold = [
        str(p)
        for p in (
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "openwatch-release",
            Path("/var/cache/openwatch-tests"),
        )
        if not p.exists()
    ]
    caches = f"caches missing: {', '.join(cold)}: {_FIRST_RUN}" if cold else "caches present"
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"openwatch: running {len(session.items)} tests ({caches}); times in README.md")


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def host_port() -> str:
    return ADMIN_DSN.rsplit("@", 1)[1].split("/", 1)[0]


def make_database(prefix: str = "ow") -> Database:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER {TEST_ROLE}')
    dsn = f"postgres://{TEST_ROLE}:{quote(TEST_PASSWORD, safe='')}@{host_port()}/{name}?sslmode=disable"
    admin = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    return Database(name=name, dsn=dsn, admin_dsn=admin)


def drop_database(name: str) -> None:
    with _admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_db(pg_server: str) -> Iterator[Database]:
    """An empty database owned by the unprivileged test role; dropped afterwards."""
    db = make_database()
    try:
        yield db
    finally:
        drop_database(db.name)


def first_migrations(n: int, dest: Path) -> Path:
    """``dest`` (created if need be) holding the repository's migrations 1..n: a --dir one step behind."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in sorted((ROOT / "migrations").glob("*.sql"))[:n]:
        shutil.copyfile(p, dest / p.name)
    return dest


def run_openwatch(
    *args: str,
    env: dict[str, str] | None = None,
    binary: Path | None = None,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI (from source, or a frozen binary) with a clean, explicit environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")}
    base.update(env or {})
    cmd = [str(binary), *args] if binary else [sys.executable, "-m", "openwatch", *args]
    return subprocess.run(
        cmd, env=base, cwd=ROOT, capture_output=True, text=True, timeout=timeout, input=input
    )


# --- release toolkit (owrelease): both packages built once per session --------------------------------


@dataclass(frozen=True)
class ReleaseBuild:
    frozen: object  # owrelease.freeze.FrozenBinary
    src: Path  # the source snapshot that was frozen
    dist: Path
    rpm: Path
    deb: Path
    log: tuple[str, ...]


@pytest.fixture(scope="session")
def release_build(tmp_path_factory: pytest.TempPathFactory) -> ReleaseBuild:
    """Freeze (reusing build/freeze/<key> when nothing changed) and build the .rpm and .deb into a tmp dist.

    The sources are frozen from a snapshot, so edits landing in the tree during the session do not change
    what the package tests look at.
    """
    import shutil

    from owrelease import build, freeze

    snap = tmp_path_factory.mktemp("src")
    shutil.copytree(
        ROOT / "openwatch",
        snap / "openwatch",
        symlinks=True,  # openwatch/migrations/sql -> ../../migrations stays a link, as in the tree
        ignore=shutil.ignore_patterns("__pycache__", "_build.py"),
    )
    shutil.copytree(ROOT / "migrations", snap / "migrations")
    messages: list[str] = []
    cache = ROOT / "build" / "freeze"
    # The same builder as `nox -s build_rpm build_deb` (the bullseye build root where it can be made), so
    # the tests look at what ships and, in CI, reuse the binary the build step froze.
    builder = build.default_builder(messages.append)
    frozen = freeze.freeze(
        builder,
        src=snap,
        cache=cache,
        stamp=freeze.build_stamp(ROOT),
        log=messages.append,
        glibc_max=build.load_checked()[0].glibc_max if isinstance(builder, freeze.RootBuilder) else None,
    )
    dist = tmp_path_factory.mktemp("dist")
    rpm = build.build_package("rpm", dist, frozen=frozen, log=messages.append)
    deb = build.build_package("deb", dist, frozen=frozen, log=messages.append)
    return ReleaseBuild(frozen=frozen, src=snap, dist=dist, rpm=rpm, deb=deb, log=tuple(messages))


# --- release signing: a throwaway key per run, in a private GNUPGHOME (tests/signkeys.py) -------------


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from signkeys import make_key

    key = make_key(tmp_path_factory.mktemp("keys"), "release")
    yield key
    key.stop_agent()


@pytest.fixture(scope="session")
def other_key(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from signkeys import make_key

    key = make_key(tmp_path_factory.mktemp("keys"), "other")
    yield key
    key.stop_agent()
