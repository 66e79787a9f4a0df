"""Malformed migrations, DSNs, TOML and secrets.env: clear errors, nothing applied.

Migration files: goose's own invalid corpus (``../shared/goose-corpus/invalid``) and ours, each placed
in a ``--dir`` after a valid 0001 file. The error names the file (and the line, where there is one),
and nothing is applied: ``goose_db_version`` is absent on an empty database, or holds exactly what it
held before on a migrated one (every file is parsed before the first statement runs).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import ROOT, SHARED, TEST_PASSWORD, Database
from tests.pgcluster import openwatch_cmd, openwatch_env

CORPUS_INVALID = SHARED / "goose-corpus" / "invalid" / "up"
OK_FILE = "-- +goose Up\nCREATE TABLE ok_one (id int);\n-- +goose Down\nDROP TABLE ok_one;\n"
SECRET_PIECES = ("w0rd", "p&ss", "p%26ss")


def run(
    *args: str, dsn: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = openwatch_env(dsn or "")
    if dsn is None:
        base.pop("OPENWATCH_DATABASE_DSN")
    base.update(env or {})
    return subprocess.run(
        openwatch_cmd(*args), env=base, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def query(admin_dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        cur = conn.execute(sql)  # type: ignore[arg-type]  # literal test SQL
        return cur.fetchall() if cur.description else []


def goose_rows(db: Database) -> list[tuple[Any, ...]] | None:
    if query(db.admin_dsn, "SELECT to_regclass('public.goose_db_version')") == [(None,)]:
        return None
    return query(db.admin_dsn, "SELECT id, version_id, is_applied, tstamp FROM goose_db_version ORDER BY id")


def user_tables(db: Database) -> list[str]:
    return [
        str(r[0])
        for r in query(db.admin_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    ]


def make_dir(tmp_path: Path, files: dict[str, bytes | str], name: str = "m") -> Path:
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    for fname, body in files.items():
        (d / fname).write_bytes(body.encode() if isinstance(body, str) else body)
    return d


def one_error_line(r: subprocess.CompletedProcess[str], prefix: str = "openwatch migrate: ") -> str:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(prefix), lines[0]
    for piece in SECRET_PIECES:
        assert piece not in r.stderr + r.stdout
    return lines[0]


# --------------------------------------------------------------------------------------------------
# malformed migration files


def corpus_cases() -> list[Any]:
    if not CORPUS_INVALID.is_dir():  # the reference corpus is optional outside the project's hosts
        return [pytest.param(None, id="corpus-absent")]
    return [pytest.param(p, id=p.name) for p in sorted(CORPUS_INVALID.glob("*.sql"))]


@pytest.mark.pg
@pytest.mark.parametrize("path", corpus_cases())
def test_goose_invalid_corpus_file(path: Path | None, fresh_db: Database, tmp_path: Path) -> None:
    if path is None:
        pytest.fail(f"{CORPUS_INVALID} is absent: goose's invalid corpus cannot be checked here")
    name = f"0002_{path.stem}.sql"
    d = make_dir(tmp_path, {"0001_ok.sql": OK_FILE, name: path.read_bytes()})
    line = one_error_line(run("migrate", "--dir", str(d), dsn=fresh_db.dsn))
    m = re.match(rf"openwatch migrate: {re.escape(name)}:(\d+): ", line)
    assert m, f"the error does not name {name}:<line>: {line}"
    assert 1 <= int(m.group(1)) <= path.read_bytes().count(b"\n") + 1
    assert "missing semicolon?" in line  # goose's message for every file of this corpus
    assert goose_rows(fresh_db) is None
    assert user_tables(fresh_db) == []


BAD_FILES: dict[str, tuple[bytes, int | None, str]] = {
    # id: (content of 0002_bad.sql, expected line, a phrase of the message)
    "sql-before-up": (b"CREATE TABLE early (id int);\n-- +goose Up\nSELECT 1;\n", 1, "unexpected state 0"),
    "unclosed-statementbegin": (
        b"-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ "
        b"LANGUAGE sql;\n-- +goose Down\nDROP FUNCTION f();\n",
        4,
        "must start with '-- +goose Up' annotation",
    ),
    "unclosed-statementbegin-at-eof": (
        b"-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n",
        None,
        "missing '-- +goose StatementEnd' annotation",
    ),
    "missing-semicolon": (
        b"-- +goose Up\nCREATE TABLE a (id int);\nCREATE TABLE b (id int)\n\n-- +goose Down\nDROP TABLE b;\n",
        5,
        'unexpected unfinished SQL query: "CREATE TABLE b (id int)": missing semicolon?',
    ),
    "empty-file": (b"", 1, "must start with '-- +goose Up' annotation"),
    "only-comments": (b"-- nothing here\n-- at all\n", None, "must start with '-- +goose Up' annotation"),
    "invalid-utf8": (b"-- +goose Up\nSELECT 1;\nSELECT '\xff\xfe';\n", 3, "invalid UTF-8: byte 0xff"),
    "two-up-sections": (
        b"-- +goose Up\nSELECT 1;\n-- +goose Up\nSELECT 2;\n",
        3,
        "duplicate '-- +goose Up' annotations",
    ),
    "bad-annotation": (b"-- +goose Up\n-- +goose Sideways\nSELECT 1;\n", 2, "Sideways"),
    "down-section-broken": (
        b"-- +goose Up\nSELECT 1;\n-- +goose Down\nDROP TABLE x\n",
        None,
        "missing semicolon?",
    ),
    "envsub-unset-variable": (
        b"-- +goose ENVSUB ON\n-- +goose Up\nSELECT '${OPENWATCH_SURELY_UNSET_VAR?must be set}';\n",
        3,
        "$OPENWATCH_SURELY_UNSET_VAR: must be set",
    ),
}


@pytest.mark.pg
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_file_names_file_and_line_applies_nothing(
    case: str, fresh_db: Database, tmp_path: Path
) -> None:
    body, line_no, phrase = BAD_FILES[case]
    d = make_dir(tmp_path, {"0001_ok.sql": OK_FILE, "0002_bad.sql": body})
    line = one_error_line(run("migrate", "--dir", str(d), dsn=fresh_db.dsn))
    m = re.match(r"openwatch migrate: 0002_bad\.sql:(\d+): (.*)$", line)
    assert m, f"the error does not start with 0002_bad.sql:<line>: {line}"
    if line_no is not None:
        assert int(m.group(1)) == line_no, line
    assert phrase in m.group(2), line
    assert goose_rows(fresh_db) is None, "a parse error must stop migrate before it touches the database"
    assert user_tables(fresh_db) == []


@pytest.mark.pg
def test_malformed_file_after_applied_ones_changes_nothing(fresh_db: Database, tmp_path: Path) -> None:
    d = make_dir(tmp_path, {"0001_ok.sql": OK_FILE})
    assert run("migrate", "--dir", str(d), dsn=fresh_db.dsn).returncode == 0
    before = goose_rows(fresh_db)
    make_dir(
        tmp_path,
        {
            "0002_fine.sql": "-- +goose Up\nCREATE TABLE fine (id int);\n",
            "0003_bad.sql": "-- +goose Up\nCREATE TABLE bad (id int)\n",
        },
    )
    line = one_error_line(run("migrate", "--dir", str(d), dsn=fresh_db.dsn))
    assert line.startswith("openwatch migrate: 0003_bad.sql:2: "), line
    # 0002 is valid and pending, but nothing runs when any file of the set is malformed
    assert goose_rows(fresh_db) == before
    assert user_tables(fresh_db) == ["goose_db_version", "ok_one", "openwatch_migration_checksums"]


BAD_NAMES: dict[str, tuple[dict[str, str], str]] = {
    "duplicate-version": (
        {"0001_ok.sql": OK_FILE, "0002_a.sql": OK_FILE, "2_b.sql": OK_FILE},
        "duplicate version 2 detected: 0002_a.sql and 2_b.sql",
    ),
    "no-version": ({"0001_ok.sql": OK_FILE, "schema.sql": OK_FILE}, "schema.sql"),
    "dash-not-underscore": ({"0001_ok.sql": OK_FILE, "0002-add-things.sql": OK_FILE}, "0002-add-things.sql"),
    "version-zero": ({"0001_ok.sql": OK_FILE, "0_zero.sql": OK_FILE}, "greater than zero"),
    "not-a-number": ({"0001_ok.sql": OK_FILE, "v2_next.sql": OK_FILE}, "v2_next.sql"),
    "wrong-extension-only": ({"0001_ok.SQL": OK_FILE}, "no migration files found"),
    "empty-dir": ({"README.md": "not a migration"}, "no migration files found"),
}


@pytest.mark.pg
@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_bad_file_names_name_the_file(case: str, fresh_db: Database, tmp_path: Path) -> None:
    files, phrase = BAD_NAMES[case]
    d = make_dir(tmp_path, dict(files))
    for args in (["migrate"], ["migrate", "status"], ["migrate", "--dry-run"], ["migrate", "list"]):
        r = run(*args, "--dir", str(d), dsn=fresh_db.dsn)
        line = one_error_line(r, prefix=f"openwatch {' '.join(a for a in args if not a.startswith('-'))}: ")
        assert phrase in line, (args, line)
    assert goose_rows(fresh_db) is None


@pytest.mark.pg
def test_short_password_does_not_mangle_messages(tmp_path: Path) -> None:
    """Masking replaces the password, not every occurrence of its letters in unrelated text."""
    d = make_dir(tmp_path, {"0001_bad.sql": "-- +goose Up\nSELECT 1\n"})
    long_pw = run("migrate", "--dir", str(d), dsn="postgres://ow:a-long-secret@127.0.0.1:1/db")
    short_pw = run("migrate", "--dir", str(d), dsn="postgres://ow:y@127.0.0.1:1/db")
    assert long_pw.returncode == short_pw.returncode == 1
    assert short_pw.stderr == long_pw.stderr, (
        f"with password 'y' the message reads {short_pw.stderr!r} instead of {long_pw.stderr!r}"
    )


# --------------------------------------------------------------------------------------------------
# malformed configuration


BAD_DSNS = {
    "mysql-scheme": ("mysql://ow:{pw}@db:3306/ow", "scheme mysql:// is not postgres://"),
    "http-url": ("https://ow:{pw}@db/ow", "scheme https:// is not postgres://"),
    "no-scheme-garbage": ("ow:{pw}@db/ow", "neither a postgres:// URL nor a libpq key=value string"),
    "unterminated-quote": ("host=db user=ow password='{pw}", "neither a postgres:// URL nor"),
    "empty": ("", "database.dsn is empty"),
    "blank": ("   ", "database.dsn is empty"),
    "bad-port": ("postgres://ow:{pw}@db:port/ow", ""),
    "bad-percent-escape": ("postgres://ow:{pw}%zz@db/ow", ""),
}


@pytest.mark.parametrize("case", sorted(BAD_DSNS))
@pytest.mark.parametrize("command", ["migrate", "check-config"])
def test_malformed_dsn(case: str, command: str, tmp_path: Path) -> None:
    template, phrase = BAD_DSNS[case]
    dsn = template.format(pw="p%26ss%20w0rd")
    r = run(command, "--timeout", "3", dsn=dsn) if command == "migrate" else run(command, dsn=dsn)
    assert r.returncode == 1, (r.stdout, r.stderr)
    for piece in SECRET_PIECES:
        assert piece not in r.stdout + r.stderr
    dsn_lines = [line for line in r.stderr.splitlines() if "dsn" in line.lower() or "connect" in line]
    assert dsn_lines, r.stderr
    line = dsn_lines[0]
    assert line.startswith(f"openwatch {command}: "), line
    assert phrase in line, line
    if command == "migrate":
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert r.stdout == ""


def config_run(
    tmp_path: Path, command: str, toml: str | None, secrets: str | None
) -> subprocess.CompletedProcess[str]:
    etc = tmp_path / "etc"
    etc.mkdir(exist_ok=True)
    cert, key = etc / "cert.pem", etc / "key.pem"
    cert.write_text("cert")
    key.write_text("key")
    args = [command]
    if toml is not None:
        (etc / "openwatch.toml").write_text(
            toml.replace("@CERT@", str(cert)).replace("@KEY@", str(key)), encoding="utf-8"
        )
        args += ["--config", str(etc / "openwatch.toml")]
    if secrets is not None:
        (etc / "secrets.env").write_text(secrets, encoding="utf-8")
        args += ["--secrets", str(etc / "secrets.env")]
    if command == "migrate":
        args += ["--timeout", "3"]
    return run(*args)


TLS = '[server]\ntls_cert = "@CERT@"\ntls_key = "@KEY@"\n'
BAD_TOML = {
    "unclosed-string": (TLS + '[database]\ndsn = "postgres://ow@db/ow\n', ":5: malformed TOML"),
    "missing-equals": (TLS + "[database]\ndsn\n", ":5: malformed TOML"),
    "duplicate-key": (TLS + '[logging]\nlevel = "info"\nlevel = "debug"\n', ":6: malformed TOML"),
    "unknown-section": (TLS + "[databse]\ndsn = 'postgres://ow@db/ow'\n", ":4: unknown section [databse]"),
    "unknown-key": (TLS + "[database]\ndns = 'postgres://ow@db/ow'\n", ":5: unknown key database.dns"),
    "wrong-type": (TLS + "[database]\nmax_connections = '10'\n", ":5: database.max_connections must be"),
    "not-utf8": (TLS + "[logging]\nlevel = 'caf\udcff'\n", "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOML))
@pytest.mark.parametrize("command", ["migrate", "check-config"])
def test_malformed_toml(case: str, command: str, tmp_path: Path) -> None:
    text, phrase = BAD_TOML[case]
    if case == "not-utf8":
        etc = tmp_path / "etc"
        etc.mkdir()
        (etc / "openwatch.toml").write_bytes(b"[logging]\nlevel = 'caf\xff'\n")
        r = run(command, "--config", str(etc / "openwatch.toml"))
    else:
        r = config_run(tmp_path, command, text, None)
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert lines, r.stderr
    path = str(tmp_path / "etc" / "openwatch.toml")
    hit = [line for line in lines if path in line]
    assert hit, f"no line names {path}: {r.stderr}"
    assert phrase in hit[0], hit[0]
    assert hit[0].startswith(f"openwatch {command}: config: " if command == "migrate" else "openwatch ")
    assert r.stdout == ""


BAD_SECRETS = {
    # systemd EnvironmentFile= quoting an operator gets wrong. check-config must show where the value
    # came from (or refuse it); migrate must fail with one line; neither may echo the secret.
    "unclosed-double-quote": ('OPENWATCH_DATABASE_DSN="postgres://ow:p%26ss%20w0rd@db/ow\n', "secrets.env:1"),
    "single-quoted-garbage": ("OPENWATCH_DATABASE_DSN='ow:p%26ss%20w0rd@db'\n", "secrets.env:1"),
    "integer-key-not-integer": ("OPENWATCH_DATABASE_MAX_CONNECTIONS='ten'\n", "must be an integer"),
    "shell-export": ("export OPENWATCH_DATABASE_DSN=postgres://ow:p%26ss%20w0rd@db/ow\n", "secrets.env:1"),
}


@pytest.mark.parametrize("case", sorted(BAD_SECRETS))
def test_odd_secrets_quoting(case: str, tmp_path: Path) -> None:
    text, phrase = BAD_SECRETS[case]
    check = config_run(tmp_path, "check-config", TLS, text)
    assert phrase in check.stdout + check.stderr, check
    mig = config_run(tmp_path, "migrate", TLS, text)
    assert mig.returncode == 1, mig
    assert len(mig.stderr.splitlines()) == 1, mig.stderr
    for r in (check, mig):
        for piece in SECRET_PIECES:
            assert piece not in r.stdout + r.stderr, r


def test_migrate_says_when_secrets_env_line_is_ignored(tmp_path: Path) -> None:
    """`export NAME=...` is ignored (as systemd does); migrate must say so, not silently use the default."""
    r = config_run(tmp_path, "migrate", TLS, BAD_SECRETS["shell-export"][0])
    assert r.returncode == 1
    assert "secrets.env:1" in r.stderr, (
        f"migrate used the default DSN without mentioning the ignored secrets.env line: {r.stderr}"
    )


def test_secrets_env_quoting_that_works(tmp_path: Path, fresh_db: Database) -> None:
    """The README's advice: double quotes around a DSN whose password holds & # ' $ and a space."""
    body = f'# managed by hand\nOPENWATCH_DATABASE_DSN="{fresh_db.dsn}"\n'
    assert TEST_PASSWORD not in body  # a URL carries it percent-encoded
    r = config_run(tmp_path, "migrate", TLS, body)
    assert r.returncode == 0, r.stderr
    assert query(fresh_db.admin_dsn, "SELECT count(*) FROM goose_db_version") != [(0,)]
