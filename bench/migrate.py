"""Benchmark: `openwatch migrate` on an empty database against `psql` running the same Up SQL.

    python bench/migrate.py [--rounds 7] [--binary PATH] [--admin-dsn URL]

Measured side by side in one run, interleaved round by round, each apply on a fresh database:

* ``migrate (source)``: ``python -m openwatch migrate`` applying the embedded set (every file of
  ``migrations/``) to an empty database; ``migrate (binary)`` the same with ``--binary PATH``;
* ``psql floor``: one ``psql -X -q -v ON_ERROR_STOP=1 -f floor.sql`` over the same Up statements in
  the same order, taken from our parser (``sqlparse.parse(..., "up")``), no version table. ``psql -1``
  cannot run it: NO TRANSACTION files hold ``CREATE INDEX CONCURRENTLY``, which fails inside a
  transaction block. So floor.sql does what ``-1`` would do for each run of consecutive transactional
  files (``BEGIN`` ... ``COMMIT`` around them: fewer commits than migrate's one per file, which is the
  floor's advantage) and runs each NO TRANSACTION file's statements between those runs in autocommit,
  as migrate does;
* ``migrate, nothing pending`` against ``openwatch --version`` (the process start-up floor).

Prints every median, and the ratios migrate/psql and no-op/--version. The databases are created and
dropped with the admin DSN (default: the test superuser; the password goes through PGPASSWORD, never
argv), and every command runs as that superuser.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from openwatch.migrations import source, sqlparse  # noqa: E402  (the tree's own parser)

DEFAULT_ADMIN = os.environ.get(
    "OPENWATCH_TEST_PG_ADMIN", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)


def floor_sql(mset: source.MigrationSet) -> tuple[str, int, int]:
    """The Up statements in order; BEGIN/COMMIT around each run of transactional files."""
    out: list[str] = []
    in_tx = False
    runs = notx = 0
    for mf in mset.files:
        parsed = sqlparse.parse(mf.read_text(), "up", filename=mf.name)
        if parsed.use_tx and not in_tx:
            out.append("BEGIN;")
            in_tx = True
            runs += 1
        if not parsed.use_tx and in_tx:
            out.append("COMMIT;")
            in_tx = False
        if not parsed.use_tx:
            notx += 1
        out.append(f"-- {mf.name}")
        for stmt in parsed.statements:
            out.append(stmt if stmt.rstrip().endswith(";") else stmt + ";")
    if in_tx:
        out.append("COMMIT;")
    return "\n".join(out) + "\n", runs, notx


class Server:
    def __init__(self, admin_dsn: str) -> None:
        parts = urlsplit(admin_dsn)
        self.password = parts.password or ""
        netloc = f"{parts.username}@{parts.hostname}:{parts.port or 5432}"
        self.base = parts._replace(netloc=netloc)
        self.admin_with_password = admin_dsn
        self.env = {**os.environ, "PGPASSWORD": self.password}

    def dsn(self, db: str, *, with_password: bool = False) -> str:
        parts = urlsplit(self.admin_with_password) if with_password else self.base
        return urlunsplit(parts._replace(path="/" + db))

    def psql(self, db: str, *args: str) -> None:
        cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.dsn(db), *args]
        subprocess.run(cmd, env=self.env, check=True, stdout=subprocess.DEVNULL)

    def create(self) -> str:
        name = f"owbench_{uuid.uuid4().hex[:10]}"
        self.psql("postgres", "-c", f'CREATE DATABASE "{name}"')
        return name

    def drop(self, name: str) -> None:
        self.psql("postgres", "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=HERE, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if r.returncode != 0:
        sys.exit(f"bench/migrate.py: {' '.join(cmd[:3])} ... failed: {r.stderr.strip()}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--binary", type=Path, help="the frozen openwatch to measure next to the source tree")
    ap.add_argument("--admin-dsn", default=DEFAULT_ADMIN, help="superuser URL (default: the test server)")
    args = ap.parse_args(argv)

    mset = source.embedded()
    sql, runs, notx = floor_sql(mset)
    work = Path(tempfile.mkdtemp(prefix="ow-bench-migrate-"))
    floor = work / "floor.sql"
    floor.write_text(sql)
    server = Server(args.admin_dsn)

    variants: dict[str, list[str]] = {"source": [sys.executable, "-m", "openwatch"]}
    if args.binary:
        variants["binary"] = [str(args.binary.resolve())]
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")}

    results: dict[str, list[float]] = {}

    def add(label: str, value: float) -> None:
        results.setdefault(label, []).append(value)

    print(
        f"{len(mset.files)} migrations ({notx} NO TRANSACTION); floor: one psql -f, "
        f"{runs} BEGIN/COMMIT runs; {args.rounds} rounds"
    )
    for i in range(args.rounds):
        order = [*variants, "psql"]
        if i % 2:
            order.reverse()  # neither side always goes first (caches, checkpoints)
        for who in order:
            db = server.create()
            try:
                if who == "psql":
                    cmd = [
                        "psql",
                        "-X",
                        "-q",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-d",
                        server.dsn(db),
                        "-f",
                        str(floor),
                    ]
                    add("psql floor: apply", timed(cmd, server.env))
                    continue
                env = {**clean_env, "OPENWATCH_DATABASE_DSN": server.dsn(db, with_password=True)}
                add(f"migrate ({who}): apply", timed([*variants[who], "migrate"], env))
                add(f"migrate ({who}): nothing pending", timed([*variants[who], "migrate"], env))
                add(f"--version ({who})", timed([*variants[who], "--version"], clean_env))
            finally:
                server.drop(db)
        print(f"round {i + 1}/{args.rounds} done", file=sys.stderr)

    med = {k: statistics.median(v) for k, v in results.items()}
    print()
    print("| measurement | median ms | ratio |")
    print("|---|---:|---|")
    floor_ms = med["psql floor: apply"] * 1000
    print(f"| psql floor: apply {len(mset.files)} files | {floor_ms:.0f} | 1.00 (floor) |")
    for who in variants:
        apply_s = med[f"migrate ({who}): apply"]
        noop_s = med[f"migrate ({who}): nothing pending"]
        ver_s = med[f"--version ({who})"]
        print(f"| migrate ({who}): apply | {apply_s * 1000:.0f} | {apply_s * 1000 / floor_ms:.2f}x psql |")
        print(f"| --version ({who}) | {ver_s * 1000:.0f} | 1.00 (start-up floor) |")
        print(f"| migrate ({who}): nothing pending | {noop_s * 1000:.0f} | {noop_s / ver_s:.2f}x --version |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
