"""Benchmark: today's ``serve`` (hypercorn over h11) side by side with an earlier revision's (by default
the http.server one, c79b59f), in one run, on the same database and certificate.

For each: start-up to the first answer, RSS idle, wrk on ``GET /api/v1/health`` and on
``GET /api/v1/hosts`` (medians of ``--rounds`` runs), then 2,000 slow-loris connections held open:
RSS with them (so the cost per connection) and how long a health request takes meanwhile. Prints a
table with the ratios new/old. Both run from source unless ``--binary``/``--baseline-binary`` are given
(frozen builds; their sizes are printed too). Needs the PostgreSQL of ``.ci/pg-start`` and wrk.

    python bench/http_server.py [--duration 10] [--connections 64] [--rounds 1] [--baseline c79b59f]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from conftest import drop_database, make_database, run_openwatch  # noqa: E402
from http_health import parse_wrk  # noqa: E402
from test_serve import ADMIN, create_admin  # noqa: E402
from test_serve_harness import (  # noqa: E402
    ServeProcess,
    client_context,
    command,
    free_port,
    isolation_files,
    make_cert,
    serve_env,
)

LORIS = 2000


def rss_mb(pid: int) -> float:
    total = 0
    for p in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{p}/status").read_text(), re.M)
            total += int(m.group(1)) if m else 0
    return total / 1024


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def baseline_source(rev: str, into: Path) -> list[str]:
    """argv running ``openwatch`` from ``rev``'s tree (extracted with git archive, not checked out)."""
    data = subprocess.run(
        ["git", "archive", rev, "openwatch"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    boot = f"import sys; sys.path.insert(0, {str(into)!r}); from openwatch.cli import main; sys.exit(main())"
    return [sys.executable, "-c", boot]


def wrk(url: str, args: argparse.Namespace, token: str) -> dict[str, float]:
    runs = []
    for _ in range(args.rounds):
        out = subprocess.run(
            ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
             "-H", f"Authorization: Bearer {token}", url],
            capture_output=True, text=True, timeout=args.duration + 60,
        ).stdout  # fmt: skip
        runs.append(parse_wrk(out))
    return {k: statistics.median(r.get(k, 0.0) for r in runs) for k in ("rps", "p99_ms", "errors")}


def loris(server: ServeProcess) -> tuple[float, float, int, str]:
    """(RSS MB with LORIS held, seconds for a health request meanwhile, connections held, outcome)."""
    held: list[ssl.SSLSocket] = []
    ctx = client_context(server.cert)
    try:
        for _ in range(LORIS):
            try:
                raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                conn = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
                conn.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                held.append(conn)
            except OSError:
                break
        assert server.proc is not None
        rss = rss_mb(server.proc.pid)
        started = time.monotonic()
        try:
            outcome = str(server.request("GET", "/api/v1/health", timeout=10).status)
        except OSError as exc:
            outcome = type(exc).__name__
        return rss, time.monotonic() - started, len(held), outcome
    finally:
        for conn in held:
            conn.close()


def measure(name: str, argv: list[str], dsn: str, token: str, cert: Path, key: Path, iso: list[str],
            args: argparse.Namespace) -> dict[str, object]:  # fmt: skip
    port = free_port()
    env = serve_env(dsn, port, cert, key, OPENWATCH_LOGGING_LEVEL="warn")
    started = time.monotonic()
    server = ServeProcess([*argv, "serve", *iso], env, port, cert)
    server.token = token
    server.start(ready_timeout=60)
    startup = time.monotonic() - started
    try:
        assert server.proc is not None
        time.sleep(1)
        idle = rss_mb(server.proc.pid)
        base = f"https://127.0.0.1:{port}"
        health = wrk(f"{base}/api/v1/health", args, token)
        hosts = wrk(f"{base}/api/v1/hosts", args, token)
        time.sleep(1)
        after_wrk = rss_mb(server.proc.pid)
        with_loris, loris_health_s, held, outcome = loris(server)
        return {
            "name": name, "startup_s": startup, "rss_idle_mb": idle, "rss_after_wrk_mb": after_wrk,
            "health_rps": health["rps"], "health_p99_ms": health["p99_ms"], "health_errors": health["errors"],
            "hosts_rps": hosts["rps"], "hosts_p99_ms": hosts["p99_ms"], "hosts_errors": hosts["errors"],
            "loris_held": held, "rss_loris_mb": with_loris,
            "kb_per_conn": (with_loris - after_wrk) * 1024 / max(held, 1),
            "health_during_loris_s": loris_health_s, "health_during_loris": outcome,
        }  # fmt: skip
    finally:
        server.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--baseline", default="c79b59f", help="git revision of the server to compare with")
    ap.add_argument("--binary", type=Path, help="frozen build of this tree")
    ap.add_argument("--baseline-binary", type=Path, help="frozen build of the baseline")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("http_server: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 1
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 16384), hard))

    work = Path(tempfile.mkdtemp(prefix="ow-bench-"))
    db = make_database("owbench")
    try:
        iso = isolation_files(work / "etc")
        new = [str(args.binary)] if args.binary else command(None)
        old = (
            [str(args.baseline_binary)]
            if args.baseline_binary
            else baseline_source(args.baseline, work / "old")
        )
        migrated = run_openwatch("migrate", *iso, env={"OPENWATCH_DATABASE_DSN": db.dsn}, binary=args.binary)
        if migrated.returncode != 0:
            print(f"http_server: migrate failed: {migrated.stderr.strip()}", file=sys.stderr)
            return 1
        token = create_admin(db.dsn, args.binary, iso)
        subprocess.run(
            ["psql", db.admin_dsn, "-qc",
             "INSERT INTO hosts (hostname, address)"
             " SELECT 'h' || i, '10.0.0.1' FROM generate_series(1, 50) i"],
            check=True, capture_output=True,
        )  # fmt: skip
        cert, key = make_cert(work / "tls")
        rows = [
            measure(f"old ({args.baseline}, http.server)", old, db.dsn, token, cert, key, iso, args),
            measure("new (hypercorn/h11)", new, db.dsn, token, cert, key, iso, args),
        ]
    finally:
        drop_database(db.name)
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, median of {args.rounds}; user {ADMIN}"
    )
    keys = [k for k in rows[0] if k != "name"]
    print(f"{'':<24}" + "".join(f"{r['name']!s:>34}" for r in rows) + f"{'new/old':>10}")
    for k in keys:
        a, b = rows[0][k], rows[1][k]
        cells = "".join(f"{v:>34.2f}" if isinstance(v, float) else f"{v!s:>34}" for v in (a, b))
        ratio = f"{b / a:>10.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a else ""
        print(f"{k:<24}{cells}{ratio}")
    for label, path in (("new binary", args.binary), ("old binary", args.baseline_binary)):
        if path:
            print(f"{label} size: {path.stat().st_size / 1e6:.1f} MB ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
