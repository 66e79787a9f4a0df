"""The migration set: goose CLI collection rules plus our name rule (pure file system)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from openwatch.migrations import source
from openwatch.migrations.source import SourceError, from_dir

ROOT = Path(__file__).resolve().parent.parent


def _write(d: Path, **files: str) -> Path:
    for name, text in files.items():
        (d / name).write_text(text)
    return d


UP = "-- +goose Up\nSELECT 1;\n"


def test_numeric_order_sha_and_ignored_files(tmp_path: Path) -> None:
    _write(
        tmp_path,
        **{"10_ten.sql": UP, "2_two.sql": UP, "00001_one.sql": UP, "migrations.lock": "x", "README": ""},
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "0003_nested.sql").write_text(UP)
    mset = from_dir(tmp_path)
    assert [(f.version, f.name) for f in mset.files] == [
        (1, "00001_one.sql"),
        (2, "2_two.sql"),
        (10, "10_ten.sql"),
    ]
    assert mset.head == 10
    assert mset.files[0].sha256 == hashlib.sha256(UP.encode()).hexdigest()
    assert mset.files[0].read_text() == UP


def test_duplicate_versions_name_both(tmp_path: Path) -> None:
    _write(tmp_path, **{"1_a.sql": UP, "0001_b.sql": UP})
    with pytest.raises(SourceError, match=r"duplicate version 1 detected: 0001_b.sql and 1_a.sql"):
        from_dir(tmp_path)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("schema.sql", "no filename separator '_' found"),
        ("abc_x.sql", "failed to parse version"),
        ("0_zero.sql", "migration version must be greater than zero"),
        ("0001_.sql", "NNNN_description.sql"),
        ("+5_plus.sql", "NNNN_description.sql"),
        ("99999999999999999999_big.sql", "out of range"),
    ],
)
def test_every_sql_file_needs_a_valid_name(tmp_path: Path, name: str, reason: str) -> None:
    _write(tmp_path, **{"0001_ok.sql": UP, name: UP})
    with pytest.raises(SourceError) as err:
        from_dir(tmp_path)
    assert name in str(err.value)
    assert reason in str(err.value)


def test_empty_and_missing_directories(tmp_path: Path) -> None:
    (tmp_path / "migrations.lock").write_text("")
    with pytest.raises(SourceError, match="no migration files found"):
        from_dir(tmp_path)
    with pytest.raises(SourceError, match="directory does not exist"):
        from_dir(tmp_path / "absent")


def test_embedded_is_the_repo_migrations_dir() -> None:
    assert source.embedded_dir().resolve() == ROOT / "migrations"
    mset = source.embedded()
    names = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    assert sorted(f.name for f in mset.files) == names
    assert mset.head == max(f.version for f in mset.files)
