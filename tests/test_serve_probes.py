"""``openwatch serve`` probed as an attacker on the network would (issue 14): unauthenticated writes,
logins and their rate limit, slow-loris, the connection cap, oversized headers, request smuggling,
inputs that used to give 500, log injection, a hung database. Against the real server (from source,
or the binary in OPENWATCH_TEST_BINARY; test_serve_frozen runs these on the frozen build).

No timing asserts: deadlines are checked by their effect (a loris connection is closed by the server,
a request answers while 2,000 are held), the figures live in bench/http_server.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import resource
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import test_serve as serve
from conftest import Database, run_openwatch
from pgcluster import throwaway_cluster
from test_serve import ADMIN, ADMIN_PASSWORD, TOKENS, StartServer, create_admin
from test_serve_harness import ServeProcess, client_context

pytestmark = pytest.mark.pg

# test_serve's fixtures, registered here (test_serve_frozen overrides openwatch_binary)
openwatch_binary = serve.openwatch_binary
tls_pair = serve.tls_pair
iso = serve.iso
migrated_db = serve.migrated_db
start_server = serve.start_server

LORIS = 2000
RSS_BOUND_MB = 400  # the stated bound with 2,000 connections held (bench/http_server.py measures ~)


def tls(server: ServeProcess, timeout: float = 10) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    return client_context(server.cert).wrap_socket(raw, server_hostname="127.0.0.1")


def exchange(server: ServeProcess, data: bytes, *, shut: bool = False, wait: float = 5) -> bytes:
    """Send raw bytes over TLS; everything the server answers until it closes (or ``wait`` passes)."""
    got = b""
    with tls(server) as conn:
        try:
            conn.sendall(data)
        except (OSError, ssl.SSLError):  # the server closed on us mid-send (e.g. headers too large)
            return b""
        if shut:  # the client goes away mid-request (close_notify and FIN)
            with contextlib.suppress(OSError, ssl.SSLError):
                conn.unwrap()
            return b""
        conn.settimeout(wait)
        with contextlib.suppress(OSError, ssl.SSLError):
            while chunk := conn.recv(65536):
                got += chunk
    return got


def statuses(answer: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"^HTTP/1\.[01] (\d{3}) ", answer, re.M)]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the one-file binary is two processes)."""
    total = 0
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(entry.name))
    for p in pids:
        with contextlib.suppress(OSError):
            m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{p}/status").read_text(), re.M)
            total += int(m.group(1)) if m else 0
    return total / 1024


def host_count(db: Database) -> int:
    with psycopg.connect(db.admin_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM hosts").fetchone()
    return int(row[0]) if row else -1


def audit_actions(db: Database) -> list[tuple[str, str, str]]:
    with psycopg.connect(db.admin_dsn) as conn:
        rows = conn.execute(
            "SELECT action, outcome, actor_name FROM audit_events ORDER BY occurred_at"
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


@pytest.fixture(autouse=True)
def _many_files() -> Iterator[None]:
    """The server (started after this) inherits room for 2,000+ connections; so does this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16384)), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- authentication -----------------------------------------------------------------------------


def test_everything_but_health_needs_credentials(migrated_db: Database, start_server: StartServer) -> None:
    server = start_server(migrated_db.dsn)
    assert server.request("GET", "/api/v1/health", auth=False).status == 200
    for method, path, body in (
        ("POST", "/api/v1/hosts", {"hostname": "evil", "address": "10.6.6.6"}),
        ("GET", "/api/v1/hosts", None),
        ("GET", "/api/v1/version", None),
        ("GET", "/api/v1/auth/me", None),
    ):
        denied = server.request(method, path, body, auth=False)
        assert denied.status == 401, (path, denied.raw)
        assert denied.headers["www-authenticate"].startswith("Bearer")
        assert denied.json()["error"]["code"] == "unauthenticated"
        bad = server.request(method, path, body, headers={"Authorization": "Bearer ow_" + "x" * 40})
        assert bad.status == 401
    assert host_count(migrated_db) == 0
    assert server.request("GET", "/api/v1/version").status == 200  # with the admin's token
    # the database keeps only the token's sha256 and prefix
    token = TOKENS[migrated_db.dsn]
    with psycopg.connect(migrated_db.admin_dsn) as conn:
        prefix, digest = conn.execute("SELECT token_prefix, token_hash FROM api_tokens").fetchone() or (
            "",
            "",
        )
    assert prefix == token[:11] and digest == hashlib.sha256(token.encode()).hexdigest()


def test_login_session_cookie_logout_and_audit(migrated_db: Database, start_server: StartServer) -> None:
    server = start_server(migrated_db.dsn, OPENWATCH_LOGGING_LEVEL="debug")
    wrong = server.request("POST", "/api/v1/auth/login", {"username": ADMIN, "password": "nope"}, auth=False)
    assert wrong.status == 401 and "set-cookie" not in wrong.headers
    ok = server.request(
        "POST", "/api/v1/auth/login", {"username": ADMIN, "password": ADMIN_PASSWORD}, auth=False
    )
    assert ok.status == 200, ok.raw
    assert ok.json()["user"]["username"] == ADMIN and "admin" in ok.json()["user"]["roles"]
    cookie_header = ok.headers["set-cookie"]
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in cookie_header.split("; "), cookie_header
    cookie = cookie_header.split(";")[0]
    value = cookie.split("=", 1)[1]
    with psycopg.connect(migrated_db.admin_dsn) as conn:
        stored = conn.execute(
            "SELECT token_hash, expires_at > now(), expires_at - created_at FROM user_sessions"
        ).fetchall()
    assert len(stored) == 1 and stored[0][0] == hashlib.sha256(value.encode()).hexdigest()
    assert stored[0][1] is True and stored[0][2].total_seconds() == 12 * 3600  # auth_policy's absolute max

    session = {"Cookie": cookie}
    assert server.request("GET", "/api/v1/auth/me", headers=session).json()["user"]["via"] == "session"
    created = server.request(
        "POST", "/api/v1/hosts", {"hostname": "s1", "address": "10.0.0.1"}, headers=session
    )
    assert created.status == 201
    out = server.request("POST", "/api/v1/auth/logout", headers=session)
    assert out.status == 200 and "Max-Age=0" in out.headers["set-cookie"]
    assert server.request("GET", "/api/v1/hosts", headers=session).status == 401  # revoked

    # an idle session expires: last seen longer ago than auth_policy's idle minutes
    again = server.request(
        "POST", "/api/v1/auth/login", {"username": ADMIN, "password": ADMIN_PASSWORD}, auth=False
    )
    idle = {"Cookie": again.headers["set-cookie"].split(";")[0]}
    assert server.request("GET", "/api/v1/auth/me", headers=idle).status == 200
    with psycopg.connect(migrated_db.admin_dsn, autocommit=True) as conn:
        conn.execute("UPDATE user_sessions SET last_seen_at = now() - interval '31 minutes'")
    assert server.request("GET", "/api/v1/auth/me", headers=idle).status == 401

    actions = audit_actions(migrated_db)
    assert ("user.create", "success", "system") in actions
    assert ("token.create", "success", "system") in actions
    assert ("auth.login", "failure", ADMIN) in actions
    assert ("auth.login", "success", ADMIN) in actions
    assert ("host.create", "success", ADMIN) in actions
    assert ("auth.logout", "success", ADMIN) in actions
    server.stop()
    for secret in (ADMIN_PASSWORD, value, TOKENS[migrated_db.dsn], "nope"):
        assert secret not in server.output()  # no password, cookie or token in the logs


def test_failed_logins_are_rate_limited_per_address(migrated_db: Database, start_server: StartServer) -> None:
    server = start_server(migrated_db.dsn)
    codes = [
        server.request(
            "POST", "/api/v1/auth/login", {"username": ADMIN, "password": f"guess{i}"}, auth=False
        ).status
        for i in range(7)
    ]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429], codes
    # even the right password is refused now, without being checked
    right = server.request(
        "POST", "/api/v1/auth/login", {"username": ADMIN, "password": ADMIN_PASSWORD}, auth=False
    )
    assert right.status == 429 and int(right.headers["retry-after"]) > 0
    failures = [a for a in audit_actions(migrated_db) if a[:2] == ("auth.login", "failure")]
    assert len(failures) == 5


def test_token_revoke_and_user_disable_take_effect(
    migrated_db: Database, start_server: StartServer, openwatch_binary: Path | None, iso: list[str]
) -> None:
    server = start_server(migrated_db.dsn)
    env = {"OPENWATCH_DATABASE_DSN": migrated_db.dsn}
    assert server.request("GET", "/api/v1/hosts").status == 200
    listed = run_openwatch("token", "list", *iso, env=env, binary=openwatch_binary)
    assert listed.returncode == 0 and TOKENS[migrated_db.dsn][:11] in listed.stdout
    assert TOKENS[migrated_db.dsn] not in listed.stdout
    revoked = run_openwatch(
        "token", "revoke", TOKENS[migrated_db.dsn][:11], *iso, env=env, binary=openwatch_binary
    )
    assert revoked.returncode == 0, revoked.stderr
    assert server.request("GET", "/api/v1/hosts").status == 401

    made = run_openwatch(
        "token",
        "create",
        "--user",
        ADMIN,
        "--name",
        "second",
        "--expires",
        "90d",
        *iso,
        env=env,
        binary=openwatch_binary,
    )
    assert made.returncode == 0, made.stderr
    server.token = made.stdout.strip()
    assert server.request("GET", "/api/v1/hosts").status == 200
    off = run_openwatch("user", "disable", ADMIN, *iso, env=env, binary=openwatch_binary)
    assert off.returncode == 0, off.stderr
    assert server.request("GET", "/api/v1/hosts").status == 401
    users = run_openwatch("user", "list", *iso, env=env, binary=openwatch_binary)
    assert re.search(rf"^{ADMIN}\s+admin\s+disabled", users.stdout, re.M), users.stdout
    actions = [a[0] for a in audit_actions(migrated_db)]
    assert actions.count("token.create") == 2 and "token.revoke" in actions and "user.disable" in actions
    # a short password is refused, and the password never comes from argv
    weak = run_openwatch(
        "user", "create", "bob", "--role", "viewer", *iso, env=env, binary=openwatch_binary, input="short\n"
    )
    assert weak.returncode == 1 and "at least 12" in weak.stderr


# -- slow and hostile clients ---------------------------------------------------------------------


def test_slowloris_2000_connections_are_cut_off_and_health_still_answers(
    migrated_db: Database, start_server: StartServer
) -> None:
    server = start_server(migrated_db.dsn)
    assert server.proc is not None
    held: list[ssl.SSLSocket] = []
    try:
        for i in range(LORIS):
            conn = tls(server, timeout=30)
            conn.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # headers never end
            held.append(conn)
            if i % 500 == 499:  # a normal request answers while they are held
                assert server.request("GET", "/api/v1/health", auth=False).status == 200
        assert server.request("GET", "/api/v1/health", auth=False).status == 200
        assert rss_mb(server.proc.pid) < RSS_BOUND_MB
        # a trickle (a byte every 2 s) does not push the header deadline back
        for _ in range(3):
            for conn in held[:50]:
                with contextlib.suppress(OSError):
                    conn.sendall(b"a")
            time.sleep(2)
        # every one of them is closed by the server after its header deadline (10 s)
        closed = 0
        for conn in held:
            conn.settimeout(30)
            try:
                data = conn.recv(4096)
            except (OSError, ssl.SSLError):
                data = b""
            closed += not data or data.startswith(b"HTTP/1.1 4")
        assert closed == LORIS
        assert server.request("GET", "/api/v1/health", auth=False).status == 200
    finally:
        for conn in held:
            conn.close()


def test_connections_beyond_the_cap_are_closed_at_once(
    migrated_db: Database, start_server: StartServer
) -> None:
    server = start_server(migrated_db.dsn, OPENWATCH_SERVER_MAX_CONNECTIONS="5")
    held = [tls(server) for _ in range(5)]
    try:
        with pytest.raises((OSError, ssl.SSLError)):
            extra = tls(server)
            extra.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            if not extra.recv(100):
                raise ConnectionResetError("closed")
    finally:
        for conn in held:
            conn.close()
    time.sleep(0.5)
    assert server.request("GET", "/api/v1/health", auth=False).status == 200


def test_oversized_headers_are_refused_and_memory_stays_bounded(
    migrated_db: Database, start_server: StartServer
) -> None:
    server = start_server(migrated_db.dsn)
    assert server.proc is not None
    big = b"".join(b"X-Big-%d: %s\r\n" % (i, b"a" * 65000) for i in range(97))
    for _ in range(20):
        answer = exchange(server, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
        assert statuses(answer) in ([], [400], [431]), answer[:200]
    assert rss_mb(server.proc.pid) < 200
    assert server.request("GET", "/api/v1/health", auth=False).status == 200


def test_smuggling_and_malformed_requests_are_refused(
    migrated_db: Database, start_server: StartServer
) -> None:
    server = start_server(migrated_db.dsn)
    token = TOKENS[migrated_db.dsn].encode()
    auth = b"Authorization: Bearer " + token + b"\r\n"
    post = b'{"hostname": "smuggled", "address": "10.9.9.9"}'
    inner = (
        b"POST /api/v1/hosts HTTP/1.1\r\nHost: x\r\n" + auth
        + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(post) + post
    )  # fmt: skip
    cases = {
        # a GET's body is never executed as a second request
        "get-with-body": b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(inner)
        + inner,
        # identical duplicates: h11 would fold them into one; a proxy in front may not, so both are refused
        "duplicate-cl": b"POST /api/v1/hosts HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Type: application/json\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n"
        % (len(post), len(post))
        + post,
        "duplicate-cl-list": b"POST /api/v1/hosts HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Type: application/json\r\nContent-Length: %d, %d\r\n\r\n" % (len(post), len(post))
        + post,
        "conflicting-cl": b"POST /api/v1/hosts HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Type: application/json\r\nContent-Length: %d\r\nContent-Length: 5\r\n\r\n" % len(post)
        + post,
        "cl-and-te": b"POST /api/v1/hosts HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(post), post),
        "no-host": b"POST /api/v1/hosts HTTP/1.0\r\n"
        + auth
        + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(post)
        + post,
        "no-host-1.1": b"GET /api/v1/health HTTP/1.1\r\n\r\n",
        "http-0.9": b"GET /api/v1/health\r\n",
        "http-2.0": b"GET /api/v1/health HTTP/2.0\r\nHost: x\r\n\r\n",
        "http-1.7": b"GET /api/v1/health HTTP/1.7\r\nHost: x\r\n\r\n",
        "http-3": b"GET /api/v1/health HTTP/3\r\nHost: x\r\n\r\n",
        "cl-superscript": b"POST /api/v1/hosts HTTP/1.1\r\nHost: x\r\n"
        + auth
        + "Content-Length: ²\r\n\r\n".encode()
        + b"x",
        "cl-negative": b"POST /api/v1/hosts HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: -1\r\n\r\n",
        "bad-chunk": b"POST /api/v1/hosts HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    }
    for name, data in cases.items():
        answer = exchange(server, data)
        codes = statuses(answer)
        assert len(codes) <= 1, (name, answer[:300])  # nothing was taken for a second request
        if name == "get-with-body":
            assert codes == [200], (name, answer[:300])
        else:
            assert codes == [] or 400 <= codes[0] < 500 or codes[0] == 505, (name, answer[:300])
    # truncated by the client's close: never executed
    truncated = inner[: len(inner) - 10]
    exchange(server, truncated, shut=True)
    time.sleep(1)
    assert host_count(migrated_db) == 0  # nothing was executed: not the duplicates, not the truncated one
    assert server.request("GET", "/api/v1/health", auth=False).status == 200
    assert "Traceback" not in server.output() and " status=500 " not in server.output()


def test_inputs_that_gave_500_get_4xx(migrated_db: Database, start_server: StartServer) -> None:
    server = start_server(migrated_db.dsn)
    deep = b"[" * 10000 + b"]" * 10000
    nested = server.request("POST", "/api/v1/hosts", raw=deep, headers={"Content-Type": "application/json"})
    assert nested.status == 400 and nested.json()["error"]["code"] == "invalid_json"
    login_deep = server.request(
        "POST",
        "/api/v1/auth/login",
        raw=b'{"username": ' + deep + b"}",
        headers={"Content-Type": "application/json"},
        auth=False,
    )
    assert login_deep.status == 400
    # a body shorter than its Content-Length: 408 once the body deadline passes, then closed
    token = TOKENS[migrated_db.dsn].encode()
    short = (
        b"POST /api/v1/hosts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token
        + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"hostname\""
    )  # fmt: skip
    answer = exchange(server, short, wait=30)
    assert statuses(answer) == [408], answer[:300]
    assert host_count(migrated_db) == 0
    assert " status=500 " not in server.output()


def test_control_characters_from_clients_are_escaped_in_logs(
    migrated_db: Database, start_server: StartServer
) -> None:
    for fmt in ("text", "json"):
        server = start_server(migrated_db.dsn, OPENWATCH_LOGGING_FORMAT=fmt)
        exchange(server, b"GET /x%1b[31mred%07%0aINFO%20forged%7f HTTP/1.1\r\nHost: x\r\n\r\n")
        exchange(server, b"GET /raw\x1b[2J\x07 HTTP/1.1\r\nHost: x\r\n\r\n")
        server.stop()
        out = server.output()
        for bad in ("\x1b", "\x07", "\x7f", "\nINFO forged"):
            assert bad not in out, (fmt, bad)
        assert "\\u001b" in out, out


# -- the database hung ----------------------------------------------------------------------------


def _cluster_pids(datadir: Path) -> list[int]:
    postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    pids.append(int(entry.name))
    return pids


def test_hung_database_gives_503_then_recovers(
    start_server: StartServer, openwatch_binary: Path | None, iso: list[str]
) -> None:
    with throwaway_cluster() as cluster:
        cluster.execute("CREATE ROLE ow_hung LOGIN PASSWORD 'hung-password-1'")
        cluster.execute("CREATE DATABASE ow_hung OWNER ow_hung")
        dsn = cluster.dsn_for("ow_hung", "hung-password-1", "ow_hung")
        migrated = run_openwatch(
            "migrate", *iso, env={"OPENWATCH_DATABASE_DSN": dsn}, binary=openwatch_binary
        )
        assert migrated.returncode == 0, migrated.stderr
        TOKENS[dsn] = create_admin(dsn, openwatch_binary, iso)
        server = start_server(dsn)
        assert server.request("GET", "/api/v1/hosts").status == 200  # the pool holds live connections
        pids = _cluster_pids(cluster.datadir)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            for _ in range(4):  # every one answers (503) rather than hanging; bench times it (< 3 s)
                down = server.request("GET", "/api/v1/health", timeout=10)
                assert down.status == 503, down.raw
                assert down.json()["status"] == "unhealthy"
            assert server.request("GET", "/api/v1/hosts", timeout=15).status == 503
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        recovered = 0
        for _ in range(60):
            if server.request("GET", "/api/v1/health", timeout=10).status == 200:
                recovered += 1
                break
            time.sleep(0.5)
        assert recovered, server.output()
        assert (
            server.request("POST", "/api/v1/hosts", {"hostname": "after", "address": "10.0.0.2"}).status
            == 201
        )
        server.kill()
