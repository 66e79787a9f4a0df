"""Each command imports what it uses and no more: the modules a command loads are named here.

From source, a probe runs ``openwatch.cli.main(argv)`` and reports the modules it added to the ones the
interpreter had already loaded; each command has the exact set of ``openwatch.*`` modules it may load
and a list of heavy ones it must not. The frozen binary is checked too, by the shared objects its
interpreter loads (``LD_DEBUG=files``): an extension module that is loaded had its Python package
imported. The cost of each of these is measured by bench/startup.py; this file only keeps them out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, Database, ReleaseBuild

# Imported by any command: the driver, the web stack, TLS, sockets, parsers of formats we do not read.
NEVER = (
    "psycopg",
    "psycopg_binary",
    "openwatch.server",
    "openwatch.migrations.runner",
    "http",
    "ssl",
    "_ssl",
    "socket",
    "asyncio",
    "email",
    "urllib.request",
    "xml",
    "pyexpat",
    "decimal",
    "_decimal",
    "platform",
    "concurrent",
    "sqlite3",
)
# What building the argument parser costs, and the migration set's and the config's imports.
PARSER = ("argparse", "gettext", "locale", "shutil", "bz2", "lzma")
MIGRATION_SET = ("hashlib", "_hashlib", "dataclasses", "pathlib")
CONFIG = ("openwatch.config", "tomllib", "openwatch.envfile")
BASE = {"openwatch", "openwatch.cli", "openwatch.buildinfo", "openwatch.options", "openwatch.runtime"}
# openwatch.ondemand: frozen, the embedded migrations are unpacked when first read (from source, inert)
MIGRATIONS = {
    "openwatch.migrations",
    "openwatch.migrations.discover",
    "openwatch.migrations.source",
    "openwatch.ondemand",
}

PROBE = """\
import os, sys
before = set(sys.modules)
from openwatch.cli import main
code = main(sys.argv[1:])
added = sorted(set(sys.modules) - before)
import json
with open(os.environ["OW_PROBE_OUT"], "w") as fh:
    json.dump({"code": code, "modules": added}, fh)
"""


def imported_by(argv: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    out = tmp_path / "probe.json"
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")}
    run_env.update({"OW_PROBE_OUT": str(out), "PYTHONPATH": str(ROOT), **(env or {})})
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and out.is_file(), f"probe of {argv} failed: {r.stdout}{r.stderr}"
    doc = json.loads(out.read_text())
    return doc["code"], set(doc["modules"])


def _hits(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in names))


def _config_files(tmp_path: Path) -> list[str]:
    toml = tmp_path / "openwatch.toml"
    toml.write_text('[server]\nlisten = "127.0.0.1:8443"\n[logging]\nlevel = "warn"\n')
    secrets = tmp_path / "secrets.env"
    secrets.write_text("OPENWATCH_DATABASE_DSN=postgres://ow:pw@127.0.0.1:5432/ow?sslmode=disable\n")
    return ["--config", str(toml), "--secrets", str(secrets)]


def test_version_imports_no_parser_no_hashing(tmp_path: Path) -> None:
    """``--version`` (run on every host by configuration management) reads names, prints, exits."""
    code, loaded = imported_by(["--version"], tmp_path)
    assert code == 0
    assert {m for m in loaded if m.startswith("openwatch")} == BASE | {
        "openwatch.migrations",
        "openwatch.migrations.discover",
        "openwatch.ondemand",  # the archive's migration names, frozen
    }
    assert _hits(loaded, NEVER + PARSER + MIGRATION_SET + CONFIG + ("re", "json", "typing", "enum")) == []


def test_version_with_other_options_takes_the_parser_and_prints_the_same(tmp_path: Path) -> None:
    fast = subprocess.run([sys.executable, "-m", "openwatch", "--version"], cwd=ROOT, capture_output=True)
    slow = subprocess.run(
        [sys.executable, "-m", "openwatch", "--version", "--log-level", "info"], cwd=ROOT, capture_output=True
    )
    assert fast.returncode == slow.returncode == 0
    assert fast.stdout == slow.stdout and fast.stdout.startswith(b"openwatch ")
    _code, loaded = imported_by(["--version", "--log-level", "info"], tmp_path)
    assert _hits(loaded, NEVER + MIGRATION_SET + CONFIG) == []


def test_check_config_imports_the_config_only(tmp_path: Path) -> None:
    code, loaded = imported_by(
        ["check-config", *_config_files(tmp_path), "--listen", "127.0.0.1:1"], tmp_path
    )
    assert code in (0, 1)  # the TLS files do not exist here: still a full load and validation
    assert {m for m in loaded if m.startswith("openwatch")} == BASE | {
        "openwatch.config",
        "openwatch.envfile",
    }
    assert _hits(loaded, (*NEVER, "hashlib", "_hashlib", "json")) == []


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_migrate_list_imports_the_migration_set_only(tmp_path: Path, extra: list[str]) -> None:
    code, loaded = imported_by(["migrate", "list", *extra], tmp_path)
    assert code == 0
    assert {m for m in loaded if m.startswith("openwatch")} == BASE | MIGRATIONS
    assert _hits(loaded, NEVER + CONFIG) == []
    assert ("json" in loaded) == bool(extra)


@pytest.mark.pg
def test_migrate_status_imports_the_driver_but_no_web_or_tls(tmp_path: Path, fresh_db: Database) -> None:
    code, loaded = imported_by(["migrate", "status"], tmp_path, env={"OPENWATCH_DATABASE_DSN": fresh_db.dsn})
    assert code == 0
    assert "psycopg" in loaded
    # psycopg itself imports asyncio (and with it ssl), json and importlib.metadata (email): its price
    assert _hits(loaded, ("openwatch.server", "http", "xml", "pyexpat")) == []


# --- the frozen binary: which extension modules and libraries its interpreter loads ---------------------


def loaded_objects(binary: Path, *args: str) -> set[str]:
    """Base names of the shared objects the process tree loads (glibc's ld.so reports each one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")}
    r = subprocess.run(
        [str(binary), *args], env={**env, "LD_DEBUG": "files"}, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr[-2000:]
    names = set()
    for line in r.stderr.splitlines():
        if "file=" in line and "[0];" in line and "generating link map" in line:
            names.add(line.split("file=", 1)[1].split()[0].rsplit("/", 1)[-1])
    assert any(n.startswith("libpython") for n in names), r.stderr[-2000:]
    return names


@pytest.mark.packages
@pytest.mark.slow
def test_frozen_version_loads_no_crypto_driver_or_codec(release_build: ReleaseBuild) -> None:
    binary = Path(release_build.frozen.path)  # type: ignore[attr-defined]
    names = loaded_objects(binary, "--version")
    # _socket too: PyInstaller's multiprocessing runtime hook loaded it at every start until the spec
    # left the hook out (owrelease.freeze.DROP_RTHOOKS)
    heavy = ("_hashlib", "_ssl", "libcrypto", "libssl", "_psycopg", "libpq", "_json", "_socket",
             "_decimal", "unicodedata", "_bz2", "_lzma", "pyexpat", "_codecs_")  # fmt: skip
    assert sorted(n for n in names if n.startswith(heavy)) == []
