"""The CLI surface: --version, migrate list, usage errors, and the lean start (no psycopg, no web)."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from openwatch.migrations import source
from tests.conftest import ROOT, run_openwatch

HEAVY = ("psycopg", "openwatch.server", "openwatch.migrations.runner", "http.server", "ssl")


def test_version_output() -> None:
    mset = source.embedded()
    r = run_openwatch("--version", "--config", "/nonexistent/never-read.toml")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "openwatch 0.2.0rc1",
        f"  schema:     {mset.head} ({len(mset.files)} migrations)",
        "  commit:     dev",
        "  built:      dev",
        f"  python:     {platform.python_version()}",
        # from source nothing is loaded just to name it (the frozen binary recorded these at freeze time)
        "  openssl:    not loaded",
        "  libpq:      not loaded",
        f"  psycopg:    {importlib.metadata.version('psycopg')}",
    ]
    assert r.stderr == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["migrate", "list", "--json"],
        ["migrate", "list"],
        ["check-config", "--config", "/nonexistent.toml"],
        ["check-config", "--secrets", "/dev/null"],
    ],
)
def test_lean_start_imports_no_driver_or_web(argv: list[str]) -> None:
    probe = (
        "import sys, contextlib, io\n"
        "from openwatch.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        f"    main({argv!r})\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    loaded = set(r.stdout.split())
    assert "openwatch.cli" in loaded
    assert sorted(m for m in loaded if m.startswith(HEAVY)) == []


def test_migrate_list_json_matches_tree() -> None:
    r = run_openwatch("migrate", "list", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    files = sorted((ROOT / "migrations").glob("*.sql"), key=lambda p: int(p.name.split("_")[0]))
    assert doc["count"] == len(files)
    assert doc["schema_version"] == int(files[-1].name.split("_")[0])
    assert [m["name"] for m in doc["migrations"]] == [p.name for p in files]
    # what it runs on, from source: the interpreter's, nothing loaded to say so
    assert doc["runtime"] == {
        "python": platform.python_version(),
        "openssl": "not loaded",
        "libpq": "not loaded",
        "psycopg": importlib.metadata.version("psycopg"),
    }
    import hashlib

    assert doc["migrations"][0] == {
        "version": int(files[0].name.split("_")[0]),
        "name": files[0].name,
        "sha256": hashlib.sha256(files[0].read_bytes()).hexdigest(),
    }


def test_migrate_list_text_and_dir(tmp_path: Path) -> None:
    (tmp_path / "0002_b.sql").write_text("-- +goose Up\nSELECT 1;\n")
    (tmp_path / "1_a.sql").write_text("-- +goose Up\nSELECT 1;\n")
    r = run_openwatch("migrate", "list", "--dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("1  1_a.sql  ") and lines[1].startswith("2  0002_b.sql  ")
    assert lines[-1] == "2 migrations, schema version 2"


def test_bad_dir_is_one_line_exit_1(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text("SELECT 1;")
    r = run_openwatch("migrate", "list", "--dir", str(tmp_path))
    assert r.returncode == 1
    assert r.stderr.startswith("openwatch migrate list: could not parse SQL migration file")
    assert len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["migrate", "--timeout", "soon"],
        ["migrate", "--nope"],
        ["--log-level", "loud", "check-config"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    r = run_openwatch(*argv)
    assert r.returncode == 2, (argv, r.stderr)
    assert "usage:" in r.stderr


def test_options_before_or_after_subcommand(tmp_path: Path) -> None:
    toml = tmp_path / "o.toml"
    toml.write_text("[server]\nbogus = 1\n")
    for argv in (["--config", str(toml), "check-config"], ["check-config", "--config", str(toml)]):
        r = run_openwatch(*argv)
        assert r.returncode == 1
        assert f"{toml}:2: unknown key server.bogus" in r.stderr


def test_migrate_prints_config_warnings(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("export OPENWATCH_LOGGING_LEVEL=debug\nOPENWATCH_NOT_A_KEY=1\n")
    r = run_openwatch(
        "migrate",
        "--secrets",
        str(secrets),
        "--timeout",
        "3",
        env={"OPENWATCH_DATABASE_DSN": "postgres://ow:pw@127.0.0.1:1/ow"},
    )
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0] == (
        f"openwatch migrate: warning: {secrets}:1: ignored (not NAME=value; systemd ignores it too): "
        "export OPENWATCH_LOGGING_LEVEL"
    )
    assert lines[1].startswith(f"openwatch migrate: warning: {secrets}:2: OPENWATCH_NOT_A_KEY")
    assert len(lines) == 3, r.stderr
    assert lines[-1].startswith("openwatch migrate: connect postgres://ow:***@127.0.0.1:1/ow: ")


def test_a_driver_that_cannot_load_is_one_line(tmp_path: Path) -> None:
    """PSYCOPG_IMPL names an implementation that is not installed (as a broken bundle would)."""
    (tmp_path / "none.toml").write_text("")
    (tmp_path / "none.env").write_text("")
    r = run_openwatch(
        "migrate",
        "--config",
        str(tmp_path / "none.toml"),
        "--secrets",
        str(tmp_path / "none.env"),
        env={"PSYCOPG_IMPL": "c", "OPENWATCH_DATABASE_DSN": "postgres://ow:pw@127.0.0.1:1/ow"},
    )
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("openwatch migrate: cannot load the PostgreSQL driver"), (
        lines
    )
