"""``openwatch serve`` from the FROZEN one-file binary (the ``release_build`` fixture), not from source.

The serve tests' fixtures and helpers are reused as they are: only ``openwatch_binary`` is overridden,
so ``migrated_db``, ``start_server`` and ``serve_once`` run the frozen executable. What only the frozen
build can get wrong is checked here: ``openwatch.server`` (imported lazily) and its UI files made it
into the bundle, and the bootloader parent and its Python child both go on SIGTERM, cleaning ``_MEI*``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import test_serve as serve
from conftest import Database, ReleaseBuild
from test_serve import HEAD, StartServer, _bad_tls, admin, assert_one_error_line, serve_once
from test_serve_harness import free_port, serve_env

pytestmark = [pytest.mark.pg, pytest.mark.packages]

# test_serve's fixtures, registered in this module so that they use its openwatch_binary below
tls_pair = serve.tls_pair
iso = serve.iso
migrated_db = serve.migrated_db
start_server = serve.start_server

UI = Path(__file__).resolve().parent.parent / "openwatch" / "server" / "ui"


@pytest.fixture(scope="session")
def openwatch_binary(release_build: ReleaseBuild) -> Path:
    """The frozen executable the packages ship (overrides test_serve's source/env choice)."""
    path = Path(release_build.frozen.path)  # type: ignore[attr-defined]
    assert path.is_file() and os.access(path, os.X_OK)
    return path


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_health_200_on_a_migrated_db(migrated_db: Database, start_server: StartServer) -> None:
    server = start_server(migrated_db.dsn)
    health = server.request("GET", "/api/v1/health")
    assert health.status == 200, server.output()
    assert health.json()["status"] == "healthy"
    assert health.json()["schema"] == {"current": HEAD, "expected": HEAD}
    version = server.request("GET", "/api/v1/version").json()
    assert version["commit"] not in ("", "dev") and version["build_time"] not in ("", "dev")


def test_ui_page_is_served_from_the_binary(migrated_db: Database, start_server: StartServer) -> None:
    server = start_server(migrated_db.dsn)
    for path, name, ctype in (
        ("/", "index.html", "text/html"),
        ("/app.js", "app.js", "text/javascript"),
        ("/style.css", "style.css", "text/css"),
    ):
        page = server.request("GET", path)
        assert page.status == 200, (path, server.output())
        assert page.headers["content-type"].startswith(ctype), path
        assert page.raw == (UI / name).read_bytes(), path


def test_refuses_schema_behind(
    migrated_db: Database, openwatch_binary: Path, iso: list[str], tls_pair: tuple[Path, Path]
) -> None:
    admin(
        migrated_db,
        "DELETE FROM goose_db_version WHERE version_id = (SELECT max(version_id) FROM goose_db_version)",
    )
    result, _ = serve_once(openwatch_binary, iso, serve_env(migrated_db.dsn, free_port(), *tls_pair))
    assert assert_one_error_line(result) == (
        f"openwatch serve: schema version {HEAD - 1} is behind this binary ({HEAD}): run 'openwatch migrate'"
    )


def test_refuses_schema_ahead(
    migrated_db: Database, openwatch_binary: Path, iso: list[str], tls_pair: tuple[Path, Path]
) -> None:
    admin(migrated_db, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (999, true)")
    result, _ = serve_once(openwatch_binary, iso, serve_env(migrated_db.dsn, free_port(), *tls_pair))
    assert assert_one_error_line(result) == (
        f"openwatch serve: database schema 999 is newer than this binary's {HEAD}: upgrade openwatch"
    )


@pytest.mark.parametrize("case", ["cert missing", "key of another cert"])
def test_bad_cert_is_one_line_and_exit_1(
    case: str,
    fresh_db: Database,
    openwatch_binary: Path,
    iso: list[str],
    tls_pair: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    cert, key, named = _bad_tls(tmp_path, tls_pair, case)
    result, _ = serve_once(openwatch_binary, iso, serve_env(fresh_db.dsn, free_port(), cert, key))
    assert_one_error_line(result, named)


def test_sigterm_stops_both_processes_within_a_second_and_cleans_tmpdir(
    migrated_db: Database, start_server: StartServer, tmp_path: Path
) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    server = start_server(migrated_db.dsn, TMPDIR=str(tmpdir))
    assert server.proc is not None
    assert [p.name for p in tmpdir.glob("_MEI*")], "the one-file binary unpacks into TMPDIR"
    children = _children(server.proc.pid)
    assert len(children) == 1, f"bootloader {server.proc.pid} has children {children}"
    child = children[0]
    assert server.request("GET", "/api/v1/health").status == 200
    code, elapsed = server.stop(signal.SIGTERM)
    deadline = time.monotonic() + 1.0
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert code == 0, server.output()
    assert elapsed < 1.0, elapsed
    assert not _alive(child), f"the Python child {child} outlived the bootloader"
    assert "stopped" in server.output()
    assert server.stderr == []
    assert list(tmpdir.glob("_MEI*")) == []


# The network probes of issue 14 (auth, loris, cap, headers, smuggling, 500s, logs, hung database),
# collected here again so that they run against the frozen binary (this module's openwatch_binary).
from test_serve_probes import (  # noqa: E402
    _many_files,  # noqa: F401 - its autouse fixture
    test_connections_beyond_the_cap_are_closed_at_once,  # noqa: F401
    test_control_characters_from_clients_are_escaped_in_logs,  # noqa: F401
    test_everything_but_health_needs_credentials,  # noqa: F401
    test_failed_logins_are_rate_limited_per_address,  # noqa: F401
    test_hung_database_gives_503_then_recovers,  # noqa: F401
    test_inputs_that_gave_500_get_4xx,  # noqa: F401
    test_login_session_cookie_logout_and_audit,  # noqa: F401
    test_oversized_headers_are_refused_and_memory_stays_bounded,  # noqa: F401
    test_slowloris_2000_connections_are_cut_off_and_health_still_answers,  # noqa: F401
    test_smuggling_and_malformed_requests_are_refused,  # noqa: F401
    test_token_revoke_and_user_disable_take_effect,  # noqa: F401
)
