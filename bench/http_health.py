"""Benchmark: ``GET /api/v1/health`` over HTTPS on loopback with wrk for 10 s.

Starts a throwaway database (migrated with ``openwatch migrate``), a self-signed certificate and
``openwatch serve`` (from source, or OPENWATCH_TEST_BINARY), then prints requests/s, latency
percentiles and the error count. Exits 1 when any request failed. Needs the PostgreSQL of
``.ci/pg-start`` and wrk (``apt-get install -y wrk``).

    python bench/http_health.py [--duration 10] [--connections 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import drop_database, make_database, run_openwatch  # noqa: E402
from test_serve_harness import (  # noqa: E402
    ServeProcess,
    binary_from_env,
    command,
    free_port,
    isolation_files,
    make_cert,
    serve_env,
)


def parse_wrk(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        out["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in", text):
        out["requests"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        if m := re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            out[f"p{pct}_ms"] = float(m.group(1)) * scale
    errors = 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        errors += sum(int(g) for g in m.groups())
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        errors += int(m.group(1))
    out["errors"] = errors
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    wrk = shutil.which("wrk")
    if not wrk:
        print("http_health: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 1

    binary = binary_from_env()
    work = Path(tempfile.mkdtemp(prefix="ow-bench-"))
    db = make_database("owbench")
    server: ServeProcess | None = None
    try:
        iso = isolation_files(work / "etc")
        migrated = run_openwatch("migrate", *iso, env={"OPENWATCH_DATABASE_DSN": db.dsn}, binary=binary)
        if migrated.returncode != 0:
            print(f"http_health: migrate failed: {migrated.stderr.strip()}", file=sys.stderr)
            return 1
        cert, key = make_cert(work / "tls")
        port = free_port()
        env = serve_env(db.dsn, port, cert, key, OPENWATCH_LOGGING_FORMAT="json")
        server = ServeProcess(command(binary, "serve", *iso), env, port, cert).start()
        url = f"https://127.0.0.1:{port}/api/v1/health"
        run = subprocess.run(
            [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency", url],
            capture_output=True,
            text=True,
            timeout=args.duration + 60,
        )
        figures = parse_wrk(run.stdout)
        still_healthy = server.request("GET", "/api/v1/health").status == 200
        code, stop_seconds = server.stop()
        logged = sum(1 for line in server.stdout if '"msg": "request"' in line)
    finally:
        if server is not None:
            server.kill()
        drop_database(db.name)
        shutil.rmtree(work, ignore_errors=True)

    source = f"binary {binary}" if binary else "source (python -m openwatch)"
    load = f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s"
    print(f"GET /api/v1/health over HTTPS, {load}, {source}")
    if "rps" not in figures:
        print(run.stdout + run.stderr)
        return 1
    print(f"  requests:      {int(figures['requests'])}  ({figures['rps']:.0f} req/s)")
    print(
        "  latency ms:    "
        + "  ".join(
            f"p{p} {figures[f'p{p}_ms']:.2f}" for p in ("50", "75", "90", "99") if f"p{p}_ms" in figures
        )
    )
    print(f"  errors:        {int(figures['errors'])} (socket errors + non-2xx)")
    print(f"  request lines logged: {logged}; healthy after the run: {still_healthy}")
    print(f"  SIGTERM after the run: exit {code} in {stop_seconds:.2f}s")
    return 0 if figures["errors"] == 0 and still_healthy and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
