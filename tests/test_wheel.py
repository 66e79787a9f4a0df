"""`pip install .` into a clean venv gives a working openwatch: the migrations travel as package data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, Database

pytestmark = [pytest.mark.pg, pytest.mark.slow]


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENWATCH_", "PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(
        argv, cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``openwatch`` script of a fresh venv into which a copy of the tree was pip-installed."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    # symlinks=True: openwatch/migrations/sql -> ../../migrations is built exactly as in a clone
    shutil.copytree(
        ROOT / "openwatch",
        src / "openwatch",
        symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__", "_build.py"),
    )
    shutil.copytree(ROOT / "migrations", src / "migrations")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    venv = work / "venv"
    # sys._base_executable: the interpreter this venv was made from (a venv of a venv is still clean)
    made = _run([sys._base_executable, "-m", "venv", str(venv)], work)  # type: ignore[attr-defined]
    assert made.returncode == 0, made.stderr
    pip = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(src)], work)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    shutil.rmtree(src)  # the installed package must not lean on the tree it was built from
    return venv / "bin" / "openwatch"


def test_version_shows_the_packaged_schema(installed: Path, tmp_path: Path) -> None:
    res = _run([str(installed), "--version"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "  schema:     46 (46 migrations)" in res.stdout.splitlines(), res.stdout


def test_migrate_applies_the_packaged_migrations(installed: Path, fresh_db: Database, tmp_path: Path) -> None:
    res = _run([str(installed), "migrate"], tmp_path, OPENWATCH_DATABASE_DSN=fresh_db.dsn)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "migrations applied" in res.stdout
    status = _run([str(installed), "migrate", "status"], tmp_path, OPENWATCH_DATABASE_DSN=fresh_db.dsn)
    assert status.returncode == 0, status.stderr
    assert "46" in status.stdout, status.stdout
