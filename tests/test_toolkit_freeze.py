"""owrelease.freeze: the PyInstaller invocation is pure, the cache key sees every input (no build here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from owrelease import freeze

SRC, WORK, DIST = Path("/s"), Path("/w"), Path("/d")


def test_argv_is_pure_and_complete() -> None:
    argv = freeze.pyinstaller_argv(SRC, WORK, DIST)
    assert argv == freeze.pyinstaller_argv(SRC, WORK, DIST)
    for flag in ("--clean", "--noconfirm"):
        assert flag in argv
    assert argv[argv.index("--distpath") + 1] == "/d"
    assert argv[argv.index("--workpath") + 1] == "/w/build"
    # the spec, then its own arguments: where the tree and the entry script are
    sep = argv.index("--")
    assert argv[sep - 1] == f"/w/spec/{freeze.SPEC_NAME}"
    assert argv[sep + 1 :] == ["--src", "/s", "--entry", f"/w/{freeze.ENTRY_NAME}"]
    assert "openwatch.cli" in freeze.ENTRY_SOURCE and "main()" in freeze.ENTRY_SOURCE


def _spec_settings(spec: str) -> dict[str, object]:
    """Run the spec's settings line (the JSON literal) without PyInstaller."""
    line = next(ln for ln in spec.splitlines() if ln.startswith("S = json.loads("))
    ns: dict[str, object] = {}
    exec("import json\n" + line, ns)
    return ns["S"]  # type: ignore[return-value]


def test_spec_is_pure_and_complete() -> None:
    migs = ["0001_a.sql", "0002_b.sql", "migrations.lock"]
    spec = freeze.spec_source(migs)
    assert spec == freeze.spec_source(migs)
    compile(spec, freeze.SPEC_NAME, "exec")  # valid Python
    settings = _spec_settings(spec)
    assert settings["migrations"] == migs
    assert {"tkinter", "unittest", "pydoc", "test"} <= set(settings["excludes"])  # type: ignore[arg-type]
    assert {"openwatch._build", "psycopg_binary"} <= set(settings["hiddenimports"])  # type: ignore[arg-type]
    # openwatch.server is imported lazily: the whole package must be collected, with the UI
    assert 'collect_submodules("openwatch")' in spec and 'collect_data_files("openwatch", ' in spec
    assert settings["drop_rthooks"] == list(freeze.DROP_RTHOOKS) and "    scripts,\n" in spec
    assert '"openwatch", "server", "ui"' in spec and "--onefile" not in spec
    assert "name='openwatch'" in spec and 'cdict=S["cdict"]' in spec
    # on demand: the plan is imported from the work dir the freeze copies it to, never from the frozen
    # tree (tests freeze a snapshot holding openwatch/ and migrations/ only); its hook runs first
    assert "import ondemandplan" in spec and '"packaging"' not in spec
    assert "runtime_hooks=[rthook]" in spec and "    od_options,\n    a.binaries," in spec


def test_extracted_members_are_stored_uncompressed() -> None:
    """Everything the onefile writes to its _MEI directory is stored as is: inflating it on every start
    was most of the extraction (bench/startup.py); only the in-memory bootstrap scripts stay compressed."""
    cdict = _spec_settings(freeze.spec_source())["cdict"]
    assert cdict == freeze.STORE
    for typecode in ("BINARY", "EXTENSION", "DATA", "ZIPFILE", "PYZ"):
        assert cdict[typecode] is False, typecode  # type: ignore[index]


def test_strip_is_a_parameter_off_in_the_build_root() -> None:
    stripped = _spec_settings(freeze.spec_source(["0001_a.sql"]))
    plain = _spec_settings(freeze.spec_source(["0001_a.sql"], strip=False))
    assert stripped["strip"] is True and plain["strip"] is False
    assert {**stripped, "strip": False} == plain
    # the build root strips its binaries once before patchelf; PyInstaller stripping again breaks them
    assert freeze.HostBuilder.strip is True and freeze.RootBuilder.strip is False


def test_migration_files_takes_sql_and_the_lock(tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()
    for name in ("0002_b.sql", "0001_a.sql", "README.md"):
        (tmp_path / "migrations" / name).write_text("x")
    assert freeze.migration_files(tmp_path) == ["0001_a.sql", "0002_b.sql"]
    (tmp_path / "migrations" / "migrations.lock").write_text("x")
    assert freeze.migration_files(tmp_path) == ["0001_a.sql", "0002_b.sql", "migrations.lock"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "openwatch").mkdir(parents=True)
    (src / "openwatch" / "__init__.py").write_text('__version__ = "1.0"\n')
    (src / "openwatch" / "cli.py").write_text("def main(): return 0\n")
    (src / "migrations").mkdir()
    (src / "migrations" / "0001_a.sql").write_text("-- +goose Up\nSELECT 1;\n")
    return src


def test_cache_key_sees_every_input(tree: Path) -> None:
    argv = ["--onefile"]
    base = freeze.cache_key(tree, "host|x", argv)
    assert freeze.cache_key(tree, "host|x", argv) == base
    assert freeze.cache_key(tree, "host|y", argv) != base
    assert freeze.cache_key(tree, "host|x", ["--onedir"]) != base
    assert freeze.cache_key(tree, "host|x", argv, "spec b") != freeze.cache_key(
        tree, "host|x", argv, "spec a"
    )
    (tree / "openwatch" / "cli.py").write_text("def main(): return 1\n")
    changed_source = freeze.cache_key(tree, "host|x", argv)
    assert changed_source != base
    (tree / "migrations" / "0002_b.sql").write_text("-- +goose Up\nSELECT 2;\n")
    assert freeze.cache_key(tree, "host|x", argv) != changed_source
    # bytecode caches are not inputs
    (tree / "openwatch" / "__pycache__").mkdir()
    (tree / "openwatch" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"junk")
    assert freeze.cache_key(tree, "host|x", argv) == freeze.cache_key(tree, "host|x", argv)
    shutil.rmtree(tree / "openwatch" / "__pycache__")


def test_build_module_is_written_once(tree: Path) -> None:
    target = freeze.write_build_module(tree, "abc1234-dirty", "2026-11-26T00:00:00Z")
    text = target.read_text()
    assert "COMMIT = 'abc1234-dirty'" in text and "BUILD_TIME = '2026-11-26T00:00:00Z'" in text
    mtime = target.stat().st_mtime_ns
    freeze.write_build_module(tree, "abc1234-dirty", "2026-11-26T00:00:00Z")
    assert target.stat().st_mtime_ns == mtime
