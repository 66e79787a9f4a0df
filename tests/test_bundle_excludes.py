"""What the freeze leaves out of the bundle (owrelease.freeze.UNUSED) is proven unused, and what it keeps
on purpose is proven needed.

Unused: every command runs from source with those modules made unimportable (a meta path finder that
refuses them, as their absence from the bundle would) and must behave exactly as without the block.
The frozen binary itself runs the same commands in the packaging tests and in test_serve_frozen.

Kept: psycopg decodes a database's client encoding with Python's codec of that name, so a EUC_JP (or
SJIS, BIG5) database needs the CJK codecs; the frozen binary migrates one here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from owrelease import freeze

from tests.conftest import ROOT, Database, ReleaseBuild, _admin_connect, drop_database, make_database

BLOCKER = """\
import sys
BLOCKED = {blocked!r}

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not in the bundle")
        return None

sys.meta_path.insert(0, Refuse())
from openwatch.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run(argv: list[str], env: dict[str, str], blocked: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    code = BLOCKER.format(blocked=sorted(blocked))
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")}
    return subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=ROOT, env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_spec_leaves_them_out() -> None:
    line = next(ln for ln in freeze.spec_source().splitlines() if ln.startswith("S = json.loads("))
    ns: dict[str, object] = {}
    exec("import json\n" + line, ns)
    assert set(freeze.UNUSED) <= set(ns["S"]["excludes"])  # type: ignore[index]
    # kept on purpose (see the module docstring and freeze.UNUSED's comment)
    assert not {"unicodedata", "_decimal", "decimal", "encodings", "_multibytecodec"} & set(freeze.UNUSED)


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["migrate", "list"],
        ["migrate", "list", "--json"],
        ["check-config", "--secrets", "/dev/null"],
    ],
)
def test_offline_commands_run_without_them(argv: list[str]) -> None:
    plain = run(argv, {}, ())
    blocked = run(argv, {}, freeze.UNUSED)
    assert (blocked.returncode, blocked.stdout, blocked.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    assert plain.stdout or plain.stderr  # the command did its work (check-config: the TLS files are absent)


@pytest.mark.pg
def test_migrate_and_status_run_without_them(fresh_db: Database) -> None:
    env = {"OPENWATCH_DATABASE_DSN": fresh_db.dsn}
    applied = run(["migrate"], env, freeze.UNUSED)
    assert applied.returncode == 0, applied.stderr
    again = run(["migrate"], env, freeze.UNUSED)
    assert again.returncode == 0, again.stderr
    status = run(["migrate", "status"], env, freeze.UNUSED)
    assert status.returncode == 0, status.stderr
    assert status.stdout == run(["migrate", "status"], env, ()).stdout


@pytest.fixture
def euc_jp_db(pg_server: str) -> object:
    """A database whose encoding (so the client encoding libpq gets by default) is EUC_JP."""
    db = make_database("ow_eucjp")
    with _admin_connect() as conn:
        conn.execute(f'DROP DATABASE "{db.name}"')
        conn.execute(
            f"CREATE DATABASE \"{db.name}\" OWNER ow_test TEMPLATE template0 ENCODING 'EUC_JP' "
            "LC_COLLATE 'C' LC_CTYPE 'C'"
        )
    try:
        yield db
    finally:
        drop_database(db.name)


@pytest.mark.pg
@pytest.mark.packages
@pytest.mark.slow
def test_frozen_binary_migrates_a_euc_jp_database(euc_jp_db: Database, release_build: ReleaseBuild) -> None:
    binary = Path(release_build.frozen.path)  # type: ignore[attr-defined]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")},
           "OPENWATCH_DATABASE_DSN": euc_jp_db.dsn}  # fmt: skip
    for argv in (["migrate"], ["migrate", "status"]):
        r = subprocess.run([str(binary), *argv], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    with psycopg.connect(euc_jp_db.admin_dsn) as conn:
        assert conn.info.encoding == "euc_jp"  # what psycopg decodes with: Python's CJK codec
        assert conn.execute("SELECT count(*) FROM goose_db_version").fetchone()[0] > 1  # type: ignore[index]


@pytest.mark.packages
@pytest.mark.slow
def test_the_archive_holds_no_dropped_runtime_hook_and_the_migrations_once(
    release_build: ReleaseBuild,
) -> None:
    from PyInstaller.archive.readers import CArchiveReader

    binary = Path(release_build.frozen.path)  # type: ignore[attr-defined]
    names = set(CArchiveReader(str(binary)).toc)
    hooks = sorted(n for n in names if n.startswith("pyi_rth_"))
    assert hooks == [], hooks  # every PyInstaller runtime hook the graph brought is one we dropped
    assert set(freeze.DROP_RTHOOKS) == {"pyi_rth_inspect", "pyi_rth_pkgutil", "pyi_rth_multiprocessing"}
    sql = sorted(n for n in names if n.endswith(".sql"))
    assert len(sql) == 46 and all(n.startswith("migrations/") for n in sql), sql[:3]
