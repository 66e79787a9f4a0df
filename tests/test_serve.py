"""``openwatch serve`` end to end: the real server (from source, or the binary in OPENWATCH_TEST_BINARY)
against a real PostgreSQL database migrated with ``openwatch migrate``.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from conftest import TEST_PASSWORD, Database, run_openwatch
from test_serve_harness import (
    ROOT,
    ServeProcess,
    binary_from_env,
    command,
    free_port,
    isolation_files,
    make_cert,
    serve_env,
)

from openwatch.migrations import source

pytestmark = pytest.mark.pg

HEAD = source.embedded().head
COUNT = len(source.embedded().files)
SECRETS = (TEST_PASSWORD, quote(TEST_PASSWORD, safe=""), "p&ss", "w0rd#")

StartServer = Callable[..., ServeProcess]
ADMIN, ADMIN_PASSWORD = "admin", "correct horse battery staple"
TOKENS: dict[str, str] = {}  # dsn -> an admin's API token, made by migrated_db with the real CLI


def create_admin(dsn: str, binary: Path | None, iso: list[str]) -> str:
    """``openwatch user create`` (password on stdin) and ``token create``: the token printed once."""
    env = {"OPENWATCH_DATABASE_DSN": dsn}
    made = run_openwatch(
        "user", "create", ADMIN, "--role", "admin", *iso, env=env, binary=binary, input=ADMIN_PASSWORD + "\n"
    )
    assert made.returncode == 0, made.stderr
    token = run_openwatch("token", "create", "--user", ADMIN, "--name", "tests", *iso, env=env, binary=binary)
    assert token.returncode == 0, token.stderr
    assert re.fullmatch(r"ow_[A-Za-z0-9]{40}\n", token.stdout), token.stdout
    return token.stdout.strip()


@pytest.fixture(scope="session")
def openwatch_binary() -> Path | None:
    """None runs ``python -m openwatch``; the lead's frozen build sets OPENWATCH_TEST_BINARY."""
    return binary_from_env()


@pytest.fixture(scope="session")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def iso(tmp_path: Path) -> list[str]:
    return isolation_files(tmp_path / "etc")


@pytest.fixture
def migrated_db(fresh_db: Database, openwatch_binary: Path | None, iso: list[str]) -> Database:
    result = run_openwatch(
        "migrate", *iso, env={"OPENWATCH_DATABASE_DSN": fresh_db.dsn}, binary=openwatch_binary
    )
    assert result.returncode == 0, result.stderr
    TOKENS[fresh_db.dsn] = create_admin(fresh_db.dsn, openwatch_binary, iso)
    return fresh_db


@pytest.fixture
def start_server(
    openwatch_binary: Path | None, tls_pair: tuple[Path, Path], iso: list[str]
) -> Iterator[StartServer]:
    started: list[ServeProcess] = []

    def start(dsn: str, *, ready: bool = True, **extra: str) -> ServeProcess:
        port = free_port()
        cert, key = tls_pair
        server = ServeProcess(
            command(openwatch_binary, "serve", *iso), serve_env(dsn, port, cert, key, **extra), port, cert
        )
        server.token = TOKENS.get(dsn)
        started.append(server)
        return server.start(ready_timeout=30 if ready else 0)

    yield start
    for server in started:
        server.kill()


def serve_once(
    binary: Path | None, iso: list[str], env: dict[str, str], timeout: float = 60
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = run_openwatch("serve", *iso, env=env, binary=binary, timeout=timeout)
    return result, time.monotonic() - started


def admin(db: Database, *statements: str) -> None:
    with psycopg.connect(db.admin_dsn, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("openwatch serve: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert_no_secret(result.stdout + result.stderr)
    return lines[0]


# -- the API -------------------------------------------------------------------------------------


def test_health_and_version(migrated_db: Database, start_server: StartServer) -> None:
    server = start_server(migrated_db.dsn)
    health = server.request("GET", "/api/v1/health")
    assert health.status == 200
    assert health.headers["content-type"] == "application/json"
    assert health.json() == {
        "status": "healthy",
        "db_connected": True,
        "schema": {"current": HEAD, "expected": HEAD},
        "version": health.json()["version"],
    }
    version = server.request("GET", "/api/v1/version").json()
    assert set(version) == {"version", "commit", "build_time", "schema_version", "migration_count"}
    assert version["schema_version"] == HEAD
    assert version["migration_count"] == COUNT
    assert version["version"] == health.json()["version"] != ""
    head = server.request("HEAD", "/api/v1/version")
    assert head.status == 200 and head.raw == b""


def test_hosts_create_list_and_errors(migrated_db: Database, start_server: StartServer) -> None:
    server = start_server(migrated_db.dsn)
    created = server.request(
        "POST", "/api/v1/hosts", {"hostname": "web-01.example.com", "address": "10.0.0.5"}
    )
    assert created.status == 201, created.raw
    host = created.json()
    assert host["hostname"] == "web-01.example.com" and host["address"] == "10.0.0.5" and host["port"] == 22
    assert re.fullmatch(r"[0-9a-f-]{36}", host["id"])
    assert created.headers["location"] == f"/api/v1/hosts/{host['id']}"
    assert server.request("GET", created.headers["location"]).json() == host

    with_port = server.request("POST", "/api/v1/hosts", {"hostname": "db-1", "address": "::1", "port": 2222})
    assert with_port.status == 201 and with_port.json()["port"] == 2222

    # the row really is in the database, through the app's own role
    with psycopg.connect(migrated_db.dsn) as conn:
        rows = conn.execute("SELECT hostname, address, port FROM hosts ORDER BY hostname").fetchall()
    assert rows == [("db-1", "::1", 2222), ("web-01.example.com", "10.0.0.5", 22)]

    dup = server.request("POST", "/api/v1/hosts", {"hostname": "WEB-01.example.com", "address": "10.0.0.6"})
    assert dup.status == 409
    assert dup.json()["error"]["code"] == "conflict" and dup.json()["error"]["field"] == "hostname"

    cases = [
        ({"address": "10.0.0.1"}, "hostname"),
        ({"hostname": "", "address": "10.0.0.1"}, "hostname"),
        ({"hostname": "bad host!", "address": "10.0.0.1"}, "hostname"),
        ({"hostname": "a" * 64 + ".example.com", "address": "10.0.0.1"}, "hostname"),
        ({"hostname": "ok-1"}, "address"),
        ({"hostname": "ok-1", "address": "not an address"}, "address"),
        ({"hostname": "ok-1", "address": "10.0.0.1", "port": 0}, "port"),
        ({"hostname": "ok-1", "address": "10.0.0.1", "port": 65536}, "port"),
        ({"hostname": "ok-1", "address": "10.0.0.1", "port": "22"}, "port"),
        ({"hostname": "ok-1", "address": "10.0.0.1", "port": True}, "port"),
        ({"hostname": "ok-1", "address": "10.0.0.1", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        bad = server.request("POST", "/api/v1/hosts", body)
        assert bad.status == 400, (body, bad.raw)
        err = bad.json()["error"]
        assert err["code"] == "validation_failed" and err["field"] == field, (body, err)
        assert err["message"]

    not_object = server.request("POST", "/api/v1/hosts", ["web"])
    assert not_object.status == 400 and not_object.json()["error"]["code"] == "validation_failed"
    broken = server.request(
        "POST", "/api/v1/hosts", raw=b'{"hostname": ', headers={"Content-Type": "application/json"}
    )
    assert broken.status == 400 and broken.json()["error"]["code"] == "invalid_json"
    text = server.request("POST", "/api/v1/hosts", raw=b"hostname=x", headers={"Content-Type": "text/plain"})
    assert text.status == 415 and text.json()["error"]["code"] == "unsupported_media_type"
    big = server.request(
        "POST", "/api/v1/hosts", raw=b" " * (65 * 1024), headers={"Content-Type": "application/json"}
    )
    assert big.status == 413 and big.json()["error"]["code"] == "payload_too_large"
    huge = server.connection()  # announces 10 MB, sends none of it: answered at once, then closed
    huge.putrequest("POST", "/api/v1/hosts")
    huge.putheader("Content-Type", "application/json")
    huge.putheader("Content-Length", str(10 * 1024 * 1024))
    huge.endheaders()
    answer = huge.getresponse()
    assert answer.status == 413 and answer.getheader("Connection") == "close"
    huge.close()

    missing = server.request("GET", "/api/v1/nope")
    assert missing.status == 404 and missing.json() == {
        "error": {"code": "not_found", "message": "no such resource: /api/v1/nope"}
    }
    assert server.request("GET", "/api/v1/hosts/not-a-uuid").status == 404
    wrong = server.request("DELETE", "/api/v1/hosts")
    assert wrong.status == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert server.request("POST", "/api/v1/health", {}).status == 405

    # nothing above added a row
    assert server.request("GET", "/api/v1/hosts").json()["total"] == 2


def test_hosts_pagination(migrated_db: Database, start_server: StartServer) -> None:
    with psycopg.connect(migrated_db.dsn, autocommit=True) as conn:
        for i in range(7):
            conn.execute("INSERT INTO hosts (hostname, address) VALUES (%s, '10.1.0.1')", (f"h{i:02d}",))
    server = start_server(migrated_db.dsn)
    first = server.request("GET", "/api/v1/hosts").json()
    assert (first["total"], first["limit"], first["offset"], len(first["items"])) == (7, 50, 0, 7)
    assert [h["hostname"] for h in first["items"]] == [f"h{i:02d}" for i in range(7)]
    page = server.request("GET", "/api/v1/hosts?limit=3&offset=3").json()
    assert [h["hostname"] for h in page["items"]] == ["h03", "h04", "h05"]
    assert (page["total"], page["limit"], page["offset"]) == (7, 3, 3)
    beyond = server.request("GET", "/api/v1/hosts?offset=100").json()
    assert beyond["items"] == [] and beyond["total"] == 7
    assert len(server.request("GET", "/api/v1/hosts?limit=200").json()["items"]) == 7
    for query, field in (
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=x", "limit"),
        ("offset=-1", "offset"),
    ):
        bad = server.request("GET", f"/api/v1/hosts?{query}")
        assert bad.status == 400 and bad.json()["error"]["field"] == field, query


# -- TLS ------------------------------------------------------------------------------------------


def test_https_only_tls12_minimum(migrated_db: Database, start_server: StartServer) -> None:
    server = start_server(migrated_db.dsn)
    # plain HTTP gets no HTTP answer on the port
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as plain:
        plain.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = plain.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/")

    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated: that is the point
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        pytest.raises(ssl.SSLError) as refused,
    ):
        old.wrap_socket(raw)
    # the server's refusal, not ours: its alert, or (asyncio's TLS drops the alert on a failed
    # handshake) its close; a client-side refusal would be NO_PROTOCOLS_AVAILABLE or similar
    assert refused.value.reason in ("TLSV1_ALERT_PROTOCOL_VERSION", "UNEXPECTED_EOF_WHILE_READING")

    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=str(server.cert))
        ctx.minimum_version = ctx.maximum_version = version
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() == ("TLSv1.2" if version is ssl.TLSVersion.TLSv1_2 else "TLSv1.3")
    assert server.request("GET", "/api/v1/health").status == 200


def _bad_tls(tmp: Path, tls_pair: tuple[Path, Path], case: str) -> tuple[Path, Path, str]:
    cert, key = tls_pair
    if case == "cert missing":
        return tmp / "nope.crt", key, str(tmp / "nope.crt")
    if case == "key missing":
        return cert, tmp / "nope.key", str(tmp / "nope.key")
    if case == "cert is a directory":
        return tmp, key, str(tmp)
    if case == "cert not PEM":
        (tmp / "junk.crt").write_text("not a certificate\n")
        return tmp / "junk.crt", key, str(tmp / "junk.crt")
    if case == "key not PEM":
        (tmp / "junk.key").write_text("not a key\n")
        return cert, tmp / "junk.key", str(tmp / "junk.key")
    if case == "key of another cert":
        _, other_key = make_cert(tmp, "other")
        return cert, other_key, str(other_key)
    if case == "key encrypted":
        enc = tmp / "enc.key"
        subprocess.run(
            ["openssl", "pkey", "-in", str(key), "-out", str(enc), "-aes256", "-passout", "pass:secret"],
            check=True,
            capture_output=True,
        )
        return cert, enc, str(enc)
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "cert missing",
        "key missing",
        "cert is a directory",
        "cert not PEM",
        "key not PEM",
        "key of another cert",
        "key encrypted",
    ],
)
def test_bad_cert_or_key_is_one_line_and_exit_1(
    case: str,
    fresh_db: Database,
    openwatch_binary: Path | None,
    iso: list[str],
    tls_pair: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    cert, key, named = _bad_tls(tmp_path, tls_pair, case)
    result, _ = serve_once(openwatch_binary, iso, serve_env(fresh_db.dsn, free_port(), cert, key))
    assert_one_error_line(result, named)


def test_port_in_use_is_one_line_and_exit_1(
    fresh_db: Database, openwatch_binary: Path | None, iso: list[str], tls_pair: tuple[Path, Path]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result, _ = serve_once(openwatch_binary, iso, serve_env(fresh_db.dsn, port, *tls_pair))
    line = assert_one_error_line(result, f"127.0.0.1:{port}")
    assert line == f"openwatch serve: listen 127.0.0.1:{port}: address already in use"


# -- the schema guard ---------------------------------------------------------------------------


def test_refuses_schema_behind(
    migrated_db: Database, openwatch_binary: Path | None, iso: list[str], tls_pair: tuple[Path, Path]
) -> None:
    admin(
        migrated_db,
        "DELETE FROM goose_db_version WHERE version_id = (SELECT max(version_id) FROM goose_db_version)",
    )
    result, _ = serve_once(openwatch_binary, iso, serve_env(migrated_db.dsn, free_port(), *tls_pair))
    line = assert_one_error_line(result)
    assert line == (
        f"openwatch serve: schema version {HEAD - 1} is behind this binary ({HEAD}): run 'openwatch migrate'"
    )


def test_refuses_schema_ahead(
    migrated_db: Database, openwatch_binary: Path | None, iso: list[str], tls_pair: tuple[Path, Path]
) -> None:
    admin(migrated_db, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (999, true)")
    result, _ = serve_once(openwatch_binary, iso, serve_env(migrated_db.dsn, free_port(), *tls_pair))
    line = assert_one_error_line(result)
    assert (
        line == f"openwatch serve: database schema 999 is newer than this binary's {HEAD}: upgrade openwatch"
    )


def test_refuses_database_without_version_table(
    fresh_db: Database, openwatch_binary: Path | None, iso: list[str], tls_pair: tuple[Path, Path]
) -> None:
    result, _ = serve_once(openwatch_binary, iso, serve_env(fresh_db.dsn, free_port(), *tls_pair))
    line = assert_one_error_line(result)
    assert (
        line == f"openwatch serve: schema version 0 is behind this binary ({HEAD}): run 'openwatch migrate'"
    )
    with psycopg.connect(fresh_db.admin_dsn) as conn:  # the guard only reads
        assert conn.execute("SELECT to_regclass('goose_db_version')").fetchone() == (None,)


def test_unreachable_database_retries_briefly_then_exit_1_with_masked_dsn(
    openwatch_binary: Path | None, iso: list[str], tls_pair: tuple[Path, Path], pg_server: str
) -> None:
    dead = free_port()
    dsn = f"postgres://ow_test:{quote(TEST_PASSWORD, safe='')}@127.0.0.1:{dead}/openwatch?sslmode=disable"
    result, elapsed = serve_once(openwatch_binary, iso, serve_env(dsn, free_port(), *tls_pair))
    line = assert_one_error_line(result, f"connect postgres://ow_test:***@127.0.0.1:{dead}/openwatch")
    assert "refused" in line.lower()
    assert 3.0 <= elapsed <= 20.0, elapsed  # it retried, and not forever


# -- running ---------------------------------------------------------------------------------------


def test_database_going_away_gives_503_then_recovers(
    migrated_db: Database, start_server: StartServer, pg_server: str
) -> None:
    server = start_server(migrated_db.dsn)
    assert server.request("GET", "/api/v1/hosts").status == 200  # the pool holds a live connection now
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{migrated_db.name}" ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (migrated_db.name,)
        )
    try:
        down = server.request("GET", "/api/v1/health")
        assert down.status == 503
        assert down.json()["status"] == "unhealthy" and down.json()["db_connected"] is False
        assert down.json()["schema"] == {"current": None, "expected": HEAD}
        hosts = server.request("GET", "/api/v1/hosts")
        assert hosts.status == 503 and hosts.json()["error"]["code"] == "db_unavailable"
        post = server.request("POST", "/api/v1/hosts", {"hostname": "x1", "address": "10.0.0.1"})
        assert post.status == 503
        assert server.proc is not None and server.proc.poll() is None
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{migrated_db.name}" ALLOW_CONNECTIONS true')
    assert server.request("GET", "/api/v1/health").status == 200
    assert server.request("POST", "/api/v1/hosts", {"hostname": "x1", "address": "10.0.0.1"}).status == 201
    code, _ = server.stop()
    assert code == 0
    assert_no_secret(server.output())


def test_health_503_when_schema_changes_under_it(migrated_db: Database, start_server: StartServer) -> None:
    server = start_server(migrated_db.dsn)
    admin(migrated_db, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (999, true)")
    health = server.request("GET", "/api/v1/health")
    assert health.status == 503
    assert health.json()["db_connected"] is True
    assert health.json()["schema"] == {"current": 999, "expected": HEAD}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_within_a_second_exit_0(
    sig: signal.Signals, migrated_db: Database, start_server: StartServer
) -> None:
    server = start_server(migrated_db.dsn)
    idle = server.connection()  # an idle keep-alive connection must not hold the shutdown
    idle.request("GET", "/api/v1/version")
    idle.getresponse().read()
    code, elapsed = server.stop(sig)
    idle.close()
    assert code == 0, server.output()
    assert elapsed < 1.0, elapsed
    assert "stopped" in server.output()
    assert server.stderr == []


def _sigterm_burst(pid: int, rng: random.Random, count: int = 60) -> None:
    """SIGTERMs tens of microseconds apart: what a one-file binary gets under systemd's default
    KillMode=control-group (systemd's own, and the bootloader forwarding the one it got)."""
    for _ in range(count):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        pause = time.perf_counter() + rng.uniform(5e-6, 60e-6)
        while time.perf_counter() < pause:
            pass


def test_a_burst_of_sigterms_never_deadlocks_the_shutdown(
    migrated_db: Database, start_server: StartServer
) -> None:
    """A handler calling threading.Event.set() deadlocked when a second SIGTERM landed while the
    main thread held the Event's lock in Event.wait(): about 4 in 10 such bursts hung for good."""
    rng = random.Random(20261126)
    for attempt in range(8):
        server = start_server(migrated_db.dsn)
        assert server.proc is not None
        time.sleep(rng.uniform(0.05, 0.3))
        started = time.monotonic()
        _sigterm_burst(server.proc.pid, rng)
        try:
            code = server.proc.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            raise AssertionError(f"attempt {attempt}: still running 5 s after a SIGTERM burst") from None
        elapsed = time.monotonic() - started
        server.join_output()
        # -SIGTERM: a last signal of the burst came after serve() had restored the default handler
        assert code in (0, -signal.SIGTERM), (attempt, code, server.output())
        assert elapsed < 1.0, (attempt, elapsed)


def test_sigterm_delivered_to_another_thread_stops_the_server(
    migrated_db: Database, start_server: StartServer
) -> None:
    """The kernel may hand a process-directed SIGTERM to any thread; the main thread must wake anyway."""
    server = start_server(migrated_db.dsn)
    assert server.proc is not None
    pid = server.proc.pid
    others = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    assert others, "serve runs its accept loop in a thread"
    libc = ctypes.CDLL(None, use_errno=True)
    started = time.monotonic()
    assert libc.tgkill(pid, others[0], signal.SIGTERM) == 0, os.strerror(ctypes.get_errno())
    try:
        code = server.proc.wait(5)
    except subprocess.TimeoutExpired:
        server.kill()
        raise AssertionError("SIGTERM to a thread other than the main one did not stop serve") from None
    elapsed = time.monotonic() - started
    server.join_output()
    assert code == 0, server.output()
    assert elapsed < 1.0, elapsed


# -- logs ------------------------------------------------------------------------------------------


def _request_lines(server: ServeProcess) -> list[str]:
    return [line for line in server.stdout if " request " in line or '"msg": "request"' in line]


def test_text_logs_one_line_per_request_without_secrets(
    migrated_db: Database, start_server: StartServer
) -> None:
    server = start_server(migrated_db.dsn, OPENWATCH_LOGGING_FORMAT="text")
    server.request("GET", "/api/v1/hosts?limit=5&token=hunter2")
    server.request("GET", "/nowhere")
    server.stop()
    # the readiness probe's own request line may reach the pipe late: look at the two requests made here
    lines = [ln for ln in _request_lines(server) if " path=/api/v1/hosts " in ln or " path=/nowhere " in ln]
    assert len(lines) == 2, server.stdout
    assert re.search(r" request method=GET path=/api/v1/hosts status=200 duration_ms=[0-9.]+ ", lines[0])
    assert re.search(r" request method=GET path=/nowhere status=404 duration_ms=[0-9.]+ ", lines[1])
    assert "hunter2" not in server.output()  # query strings are not logged
    assert "***" in "".join(server.stdout)  # the DSN is logged masked at startup
    assert_no_secret(server.output())


def test_json_logs_one_object_per_line(migrated_db: Database, start_server: StartServer) -> None:
    server = start_server(migrated_db.dsn, OPENWATCH_LOGGING_FORMAT="json")
    server.request("POST", "/api/v1/hosts", {"hostname": "j1", "address": "10.0.0.1"})
    server.stop()
    records = [json.loads(line) for line in server.stdout]  # every line is JSON
    requests = [r for r in records if r["msg"] == "request" and r["method"] == "POST"]
    assert len(requests) == 1
    assert requests[0]["path"] == "/api/v1/hosts" and requests[0]["status"] == 201
    assert isinstance(requests[0]["duration_ms"], float) and requests[0]["level"] == "info"
    assert_no_secret(server.output())


def test_log_level_is_honoured(migrated_db: Database, start_server: StartServer) -> None:
    server = start_server(migrated_db.dsn, OPENWATCH_LOGGING_LEVEL="error")
    for _ in range(3):
        assert server.request("GET", "/api/v1/health").status == 200
    code, _ = server.stop()
    assert code == 0
    assert server.stdout == []


# -- as a service ------------------------------------------------------------------------------------


def _unprivileged(workdir: Path, binary: Path | None) -> tuple[list[str], list[str], dict[str, str]]:
    """(wrapper, argv, env) running serve as nobody with no capabilities.

    From source it is this test venv's interpreter and packages (never the base interpreter's, which
    hold nothing on a fresh machine). The venv, its base interpreter (/root/.pyenv) and the tree may
    live where nobody cannot enter: a private mount namespace binds each into ``workdir``, where a
    venv of the same packages is assembled (pyvenv.cfg pointing at the bound interpreter).
    """
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    if binary is not None:
        copy = workdir / "openwatch"
        shutil.copy2(binary, copy)
        return drop, [str(copy), "serve"], {}
    base = Path(sys.base_prefix).resolve()
    site = Path(sysconfig.get_path("purelib"))  # this venv's site-packages (psycopg, ...)
    assert Path(sys.prefix) != Path(sys.base_prefix), "the suite runs in a venv (nox -s tests)"
    python, venv, src = workdir / "python", workdir / "venv", workdir / "src"
    bound_site = venv / site.relative_to(sys.prefix)
    for d in (python, bound_site, src, venv / "bin"):
        d.mkdir(parents=True)
    exe = Path(sys.executable).resolve().relative_to(base)
    (venv / "bin" / "python").symlink_to(python / exe)
    (venv / "pyvenv.cfg").write_text(f"home = {python / exe.parent}\ninclude-system-site-packages = false\n")
    for d in (workdir, venv, venv / "bin", *bound_site.parents):
        if d.is_relative_to(workdir):
            d.chmod(0o755)
    script = 'while [ "$1" != -- ]; do mount --bind "$1" "$2"; shift 2; done; shift; exec "$@"'
    binds = [str(base), str(python), str(site), str(bound_site), str(ROOT), str(src)]
    wrapper = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-ec",
        script,
        "sh",
        *binds,
        "--",
    ]
    env = {
        "LD_LIBRARY_PATH": str(python / "lib"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(src),  # the tree under test, reachable by nobody
    }
    return [*wrapper, *drop], [str(venv / "bin" / "python"), "-m", "openwatch", "serve"], env


def test_runs_as_unprivileged_user(migrated_db: Database, openwatch_binary: Path | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="ow-unpriv-"))
    try:
        work.chmod(0o755)
        cert, key = make_cert(work / "tls")
        (work / "tls").chmod(0o755)
        os.chown(key, 65534, 65534)
        key.chmod(0o600)
        iso = isolation_files(work / "etc")
        for f in (work / "etc").iterdir():
            f.chmod(0o644)
        (work / "etc").chmod(0o755)
        wrapper, argv, env = _unprivileged(work, openwatch_binary)
        port = free_port()
        server = ServeProcess(
            [*argv, *iso], {**serve_env(migrated_db.dsn, port, cert, key), **env}, port, cert, wrapper
        )
        server.token = TOKENS[migrated_db.dsn]
        server.start()
        try:
            assert server.proc is not None
            status = Path(f"/proc/{server.proc.pid}/status").read_text()
            assert re.search(r"^Uid:\s+65534\s", status, re.M), status
            assert re.search(r"^CapEff:\s+0+$", status, re.M), status
            assert server.request("GET", "/api/v1/health").status == 200
            assert (
                server.request("POST", "/api/v1/hosts", {"hostname": "u1", "address": "10.0.0.1"}).status
                == 201
            )
            code, elapsed = server.stop()
            assert code == 0 and elapsed < 1.0, server.output()
        finally:
            server.kill()

        # the same user cannot read a key that is root's alone: one line naming it, exit 1
        os.chown(key, 0, 0)
        port = free_port()
        refused = ServeProcess(
            [*argv, *iso], {**serve_env(migrated_db.dsn, port, cert, key), **env}, port, cert, wrapper
        )
        refused.start(ready_timeout=0)
        assert refused.proc is not None
        assert refused.proc.wait(60) == 1
        refused.join_output()
        lines = "".join(refused.stderr).splitlines()
        assert len(lines) == 1 and lines[0].startswith("openwatch serve: ") and str(key) in lines[0], lines
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_other_commands_do_not_import_the_web_stack(fresh_db: Database, iso: list[str]) -> None:
    """--version and migrate (from source: the import graph is what is checked) load no web module."""
    for args in (["--version"], ["migrate", "list"], ["migrate", "status", *iso]):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")}
        env["OPENWATCH_DATABASE_DSN"] = fresh_db.dsn
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "openwatch", *args],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        modules = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
        assert "openwatch.cli" in modules  # the import log was read
        for web in ("hypercorn", "h11", "argon2", "openwatch.server", "openwatch.accounts"):
            assert web not in modules, (args, web)
