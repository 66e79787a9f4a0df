"""Configuration layering, validation, masking, and check-config end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from openwatch import config
from openwatch.config import ConfigError, load, mask_dsn, scrub, validate
from tests.conftest import ROOT, TEST_PASSWORD, run_openwatch

SECRET = "s3cr&t #pw'\"$ x"


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("cert")
    key.write_text("key")
    return cert, key


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "DEFAULT_CONFIG", tmp_path / "absent.toml")
    monkeypatch.setattr(config, "DEFAULT_SECRETS", tmp_path / "absent.env")
    cfg = load(environ={})
    assert cfg.server.listen == "0.0.0.0:8443"
    assert cfg.server.tls_cert == "/etc/openwatch/tls/cert.pem"
    assert cfg.server.tls_key == "/etc/openwatch/tls/key.pem"
    assert cfg.database.dsn == "postgres://openwatch@localhost:5432/openwatch?sslmode=disable"
    assert cfg.database.max_connections == 10
    assert (cfg.logging.level, cfg.logging.format) == ("info", "text")
    assert set(cfg.sources.values()) == {"default"}


def test_layers_in_order(tmp_path: Path) -> None:
    toml = tmp_path / "openwatch.toml"
    toml.write_text(
        '[server]\nlisten = "127.0.0.1:9000"\n\n[database]\ndsn = "postgres://a@h/db"\nmax_connections = 3\n'
        '[logging]\nlevel = "debug"\n'
    )
    secrets = tmp_path / "secrets.env"
    secrets.write_text(
        f"# managed\nOPENWATCH_DATABASE_DSN='postgres://ow:{SECRET.replace(chr(39), '')}@h/db'\n"
        "OPENWATCH_DATABASE_MAX_CONNECTIONS=7\nOTHER=ignored\n"
    )
    env = {"OPENWATCH_DATABASE_MAX_CONNECTIONS": "9", "OPENWATCH_LOGGING_LEVEL": "warn"}
    cfg = load(toml, secrets, env, {"server.listen": "[::1]:8443", "logging.level": None})
    assert cfg.server.listen == "[::1]:8443"
    assert cfg.sources["server.listen"] == "flag --listen"
    assert cfg.database.dsn == f"postgres://ow:{SECRET.replace(chr(39), '')}@h/db"
    assert cfg.sources["database.dsn"] == f"{secrets}:2 OPENWATCH_DATABASE_DSN"
    assert cfg.database.max_connections == 9
    assert cfg.sources["database.max_connections"] == "environment OPENWATCH_DATABASE_MAX_CONNECTIONS"
    assert cfg.logging.level == "warn"
    assert cfg.sources["server.tls_cert"] == "default"
    assert cfg.sources["logging.format"] == "default"
    assert validate(cfg, check_files=False) == []


def test_unknown_keys_name_file_and_line(tmp_path: Path) -> None:
    toml = tmp_path / "o.toml"
    toml.write_text('# x\n[server]\nlisten = "0.0.0.0:1"\nlsten = "typo"\n\n[databse]\ndsn = "x"\n')
    with pytest.raises(ConfigError) as err:
        load(toml, os.devnull, {})
    assert err.value.problems == [
        f"{toml}:4: unknown key server.lsten",
        f"{toml}:6: unknown section [databse]",
    ]


def test_malformed_toml_and_wrong_types(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nlisten = "a"\n[database\n')
    with pytest.raises(ConfigError) as err:
        load(bad, os.devnull, {})
    assert err.value.problems[0].startswith(f"{bad}:3: malformed TOML")
    typed = tmp_path / "typed.toml"
    typed.write_text('[database]\nmax_connections = "10"\n[logging]\nlevel = true\n')
    with pytest.raises(ConfigError) as err:
        load(typed, os.devnull, {})
    assert err.value.problems == [
        f"{typed}:2: database.max_connections must be a integer, got string '10'",
        f"{typed}:4: logging.level must be a string, got boolean True",
    ]


def test_missing_explicit_files_are_errors_default_ones_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path / "nope.toml", tmp_path / "nope.env", {})
    assert err.value.problems == [
        f"{tmp_path / 'nope.toml'}: config file does not exist",
        f"{tmp_path / 'nope.env'}: secrets file does not exist",
    ]
    monkeypatch.setattr(config, "DEFAULT_CONFIG", tmp_path / "nope.toml")
    monkeypatch.setattr(config, "DEFAULT_SECRETS", tmp_path / "nope.env")
    assert load(environ={}).server.listen == "0.0.0.0:8443"


def test_env_integer_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="OPENWATCH_DATABASE_MAX_CONNECTIONS: must be an integer, got 'ten'"
    ):
        load(
            tmp_path / "x.toml" if False else None,
            tmp_path / "n.env",
            {"OPENWATCH_DATABASE_MAX_CONNECTIONS": "ten"},
        )


@pytest.mark.parametrize(
    ("field", "value", "expect"),
    [
        ("dsn", "mysql://u:pw@h/db", "scheme mysql:// is not postgres"),
        ("dsn", "just words", "neither a postgres:// URL nor a libpq key=value"),
        ("dsn", "", "database.dsn is empty"),
        ("listen", "8443", "is not host:port"),
        ("listen", "0.0.0.0:99999", "is not host:port"),
        ("max_connections", 0, "at least 1"),
        ("level", "verbose", "logging.level"),
        ("format", "xml", "logging.format"),
    ],
)
def test_validation_problems(field: str, value: object, expect: str) -> None:
    cfg = config.Config()
    section = {"dsn": "database", "max_connections": "database", "listen": "server"}.get(field, "logging")
    cfg.set(section, field, value, "test")
    problems = validate(cfg, check_files=False)
    assert len(problems) == 1
    assert expect in problems[0]
    assert "(from test)" in problems[0]


def test_valid_dsn_forms() -> None:
    for dsn in (
        "postgres://u:p@h:5432/db?sslmode=disable",
        "postgresql:///db",
        "host=127.0.0.1 port=5432 dbname=ow user=ow password='p w\\'d'",
        "dbname=ow",
    ):
        assert config.dsn_problem(dsn) is None, dsn


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("postgres://ow:p%26ss@h:5432/db?sslmode=disable", "postgres://ow:***@h:5432/db?sslmode=disable"),
        ("postgres://ow:p@ss/w#rd?@h/db", "postgres://ow:***@h/db"),
        ("postgres://ow@h/db", "postgres://ow@h/db"),
        ("postgres://h/db?sslmode=disable&password=hunter22", "postgres://h/db?sslmode=disable&password=***"),
        ("host=h password=hunter22 dbname=d", "host=h password=*** dbname=d"),
        ("host=h password = 'hun ter\\'22' dbname=d", "host=h password = *** dbname=d"),
        ("host=h password='unterminated secret", "host=h password=***"),
        ("not a dsn at all :pw@", "not a dsn at all :pw@"),
    ],
)
def test_mask_dsn(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked


def test_scrub_removes_decoded_password_and_pieces() -> None:
    dsn = "postgres://ow:p%26ss%20w0rd%23x@h/db"
    msg = 'missing "=" after "w0rd#x" in connection info; p&ss w0rd#x; p%26ss%20w0rd%23x'
    out = scrub(msg, dsn)
    for piece in ("w0rd", "p&ss", "%26"):
        assert piece not in out


# ------------------------------------------------------------------------------ check-config (subprocess)


def test_check_config_prints_masked_sources(tmp_path: Path, tls: tuple[Path, Path]) -> None:
    toml = tmp_path / "o.toml"
    toml.write_text(f'[server]\ntls_cert = "{tls[0]}"\ntls_key = "{tls[1]}"\n')
    secrets = tmp_path / "s.env"
    escaped = TEST_PASSWORD.replace('"', '\\"').replace("$", "\\$")
    secrets.write_text(f'OPENWATCH_DATABASE_DSN="postgres://ow:{escaped}@h/db"\n')
    r = run_openwatch(
        "check-config", "--config", str(toml), "--secrets", str(secrets), "--log-format", "json"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("\nconfig is valid\n")
    assert 'dsn             = "postgres://ow:***@h/db"' in r.stdout
    assert f"# {secrets}:1 OPENWATCH_DATABASE_DSN" in r.stdout
    assert f"# {toml}:2" in r.stdout
    assert '"json"    # flag --log-format' in r.stdout
    assert TEST_PASSWORD not in r.stdout + r.stderr
    assert "w0rd" not in r.stdout + r.stderr


def test_check_config_problems_one_line_each(tmp_path: Path) -> None:
    toml = tmp_path / "o.toml"
    toml.write_text(
        f'[server]\nlisten = "nope"\ntls_cert = "{tmp_path}/missing.pem"\n[database]\nmax_connections = 0\n'
    )
    r = run_openwatch(
        "check-config",
        "--config",
        str(toml),
        "--secrets",
        os.devnull,
        env={"OPENWATCH_DATABASE_DSN": f"mysql://ow:{TEST_PASSWORD}@h/db", "OPENWATCH_LOGGING_LEVEL": "loud"},
    )
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert all(line.startswith("openwatch check-config: ") for line in lines)
    text = r.stderr
    for expect in (
        "server.listen",
        "server.tls_cert",
        "missing.pem does not exist",
        "server.tls_key",
        "max_connections must be at least 1",
        "scheme mysql://",
        "logging.level",
    ):
        assert expect in text
    assert len(lines) == 6
    assert TEST_PASSWORD not in text and "w0rd" not in text


def test_check_config_unknown_key_and_missing_explicit(tmp_path: Path) -> None:
    toml = tmp_path / "o.toml"
    toml.write_text("[server]\n\nbogus = 1\n")
    r = run_openwatch("check-config", "--config", str(toml), "--secrets", os.devnull)
    assert r.returncode == 1
    assert r.stderr == f"openwatch check-config: config: {toml}:3: unknown key server.bogus\n"
    r = run_openwatch("check-config", "--config", str(tmp_path / "absent.toml"))
    assert r.returncode == 1
    assert "absent.toml: config file does not exist" in r.stderr


def test_unreadable_secrets_file(tmp_path: Path) -> None:
    """An existing secrets file we may not read: one line naming it, exit 1.

    The tests run as root, which reads any file; setpriv drops the capabilities that let root bypass
    file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), exactly the position of a non-openwatch user.
    """
    secrets = tmp_path / "secrets.env"
    secrets.write_text("OPENWATCH_DATABASE_DSN='postgres://ow:pw@h/db'\n")
    secrets.chmod(0o000)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]
    r = subprocess.run(
        [*drop, sys.executable, "-B", "-m", "openwatch", "check-config", "--secrets", str(secrets)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        f"openwatch check-config: config: {secrets}: permission denied; run as root or the openwatch user"
    ]


def test_neither_file_readable_is_still_one_line(tmp_path: Path) -> None:
    """A user outside the openwatch group may read neither file: one line naming both."""
    toml, secrets = tmp_path / "openwatch.toml", tmp_path / "secrets.env"
    toml.write_text("[logging]\nlevel = 'info'\n")
    secrets.write_text("OPENWATCH_DATABASE_DSN='postgres://ow:pw@h/db'\n")
    toml.chmod(0o000)
    secrets.chmod(0o000)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]
    r = subprocess.run(
        [
            *drop,
            sys.executable,
            "-B",
            "-m",
            "openwatch",
            "migrate",
            "--config",
            str(toml),
            "--secrets",
            str(secrets),
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == [
        f"openwatch migrate: config: {toml}, {secrets}: permission denied; run as root or the openwatch user"
    ]


def test_scrub_replaces_a_short_password_only_as_a_whole_token() -> None:
    dsn = "postgres://ow:y@h/db"
    assert scrub('unexpected unfinished SQL query: "SELECT y": yes', dsn) == (
        'unexpected unfinished SQL query: "SELECT ***": yes'
    )
    assert scrub("query", dsn) == "query"


def test_scrub_masks_any_dsn_in_the_text_structurally() -> None:
    text = "tried postgres://u:other-secret@h/db and host=h password='a b' and postgres://h/d?password=zz&x=1"
    out = scrub(text, "postgres://ow:unrelated@h/db")
    assert out == "tried postgres://u:***@h/db and host=h password=*** and postgres://h/d?password=***&x=1"


@pytest.mark.parametrize(
    ("dsn", "phrase"),
    [
        ("postgres://ow:p%26ss%20w0rd@db:port/ow", "the port is not a number from 1 to 65535"),
        ("postgres://ow:p%26ss%20w0rd@db:0/ow", "the port is not a number from 1 to 65535"),
        ("postgres://ow:p%26ss%20w0rd@db:70000/ow", "the port is not a number from 1 to 65535"),
        ("postgres://ow:p%26ss%20w0rd%zz@db/ow", "the password has an invalid percent escape"),
        ("postgres://ow:p%26ss%20w0rd@db/o%2", "the database name has an invalid percent escape"),
        ("postgres://ow:p%26ss%20w0rd@db/o%00w", "forbidden percent escape %00"),
        ("postgres://ow:p%26ss%20w0rd@[::1/ow", "no closing ']'"),
        ("postgres://ow:p&ss/w0rd@db/ow", "percent-encode '/' as %2F"),
        ("postgres://ow:p&ss@w0rd@db/ow", "more than one '@'"),
        ("postgres://ow:p%26ss%20w0rd@db/ow?sslmode", "has no '='"),
        ("postgres://ow:p%26ss%20w0rd@db/ow?port=x", "port query parameter"),
        ("host=db port=54x password='p&ss w0rd'", "port is not a number"),
        ("host=db password='p&ss w0rd", "unterminated quoted value"),
        ("host=db p&ss w0rd", "a word without '='"),
    ],
)
def test_dsn_problem_names_the_part_without_the_password(dsn: str, phrase: str) -> None:
    problem = config.dsn_problem(dsn)
    assert problem is not None and problem.startswith("database.dsn"), dsn
    assert phrase in problem, problem
    for piece in ("w0rd", "p&ss", "p%26ss"):
        assert piece not in problem, problem


def test_valid_dsn_forms_more() -> None:
    for dsn in (
        "postgres://ow@[::1]:5432,db2:5433/ow?sslmode=disable&port=5432,5433",
        "postgresql://ow:p%25x@db/my%20db",
        "postgres://ow:p&ss w0rd#'\"$x@h/db",  # libpq takes an unencoded password up to the first '@'
        "host=db port='' dbname=ow",
    ):
        assert config.dsn_problem(dsn) is None, dsn


def test_ignored_secrets_line_for_the_dsn_is_an_error_not_the_default(tmp_path: Path) -> None:
    secrets = tmp_path / "s.env"
    secrets.write_text(
        "export OPENWATCH_DATABASE_DSN=postgres://ow:p%26ss@db/ow\nexport OPENWATCH_LOGGING_LEVEL=x\n"
    )
    with pytest.raises(ConfigError) as err:
        load(tmp_path / "none.toml" if False else None, secrets, {})
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith(f"{secrets}:1: this OPENWATCH_DATABASE_DSN line is ignored")
    assert "p%26ss" not in err.value.problems[0]
    # with the DSN set elsewhere, the ignored lines are warnings naming file:line
    cfg = load(None, secrets, {"OPENWATCH_DATABASE_DSN": "postgres://ow@db/ow"})
    assert [w.split(": ", 1)[0] for w in cfg.warnings] == [f"{secrets}:1", f"{secrets}:2"]
