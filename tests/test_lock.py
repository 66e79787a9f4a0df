"""migrations.lock: edits, removals, renumbering and gaps fail the check; new files are appended."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from owrelease import lock

REPO = Path(__file__).resolve().parent.parent


def _project(tmp_path: Path, count: int = 4) -> Path:
    """A project copy whose migrations/ holds the first `count` files of the real tree."""
    src = sorted(p for p in (REPO / "migrations").glob("*.sql"))[:count]
    assert len(src) == count, "the tree needs real migrations to copy"
    dst = tmp_path / "migrations"
    dst.mkdir()
    for p in src:
        shutil.copy2(p, dst / p.name)
    return tmp_path


def test_repository_lock_matches_tree() -> None:
    assert lock.problems(REPO) == []
    names = [f.name for f in lock.read_lock(REPO / "migrations" / lock.LOCK_NAME)]
    assert names == sorted(p.name for p in (REPO / "migrations").glob("*.sql"))


def test_write_then_check_is_clean_and_sha256sum_compatible(tmp_path: Path) -> None:
    project = _project(tmp_path)
    added = lock.write(project)
    assert [f.version for f in added] == [1, 2, 3, 4]
    assert lock.problems(project) == []
    text = (project / "migrations" / lock.LOCK_NAME).read_text()
    assert text.startswith("# ")

    out = subprocess.run(
        ["sha256sum", "--check", "--strict", lock.LOCK_NAME],
        cwd=project / "migrations",
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_missing_lock_is_reported(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert lock.problems(project) == [
        f"{project}/migrations/migrations.lock: missing (write it with: nox -s lock)"
    ]


def test_edited_locked_migration_fails(tmp_path: Path) -> None:
    project = _project(tmp_path)
    lock.write(project)
    target = sorted((project / "migrations").glob("0002_*.sql"))[0]
    target.write_text(target.read_text() + "\n-- a quiet edit\n")
    with pytest.raises(lock.LockError) as err:
        lock.check(project)
    assert err.value.lines == [lock.problems(project)[0]]
    assert err.value.lines[0].startswith(f"migrations/{target.name}: locked migration edited (sha256 ")
    # the lock session refuses to paper over it
    with pytest.raises(lock.LockError):
        lock.write(project)


def test_removed_and_renumbered_locked_migrations_fail(tmp_path: Path) -> None:
    project = _project(tmp_path)
    lock.write(project)
    m = project / "migrations"
    third = sorted(m.glob("0003_*.sql"))[0]
    fourth = sorted(m.glob("0004_*.sql"))[0]
    third.unlink()
    fourth.rename(m / ("0003_" + fourth.name[5:]))
    found = lock.problems(project)
    assert f"migrations/{third.name}: locked migration removed" in found
    assert (
        f"migrations/{fourth.name}: locked migration renumbered or renamed to 0003_{fourth.name[5:]}" in found
    )


def test_gap_in_new_file_numbering_fails(tmp_path: Path) -> None:
    project = _project(tmp_path)
    lock.write(project)
    (project / "migrations" / "0006_skipped_five.sql").write_text("-- +goose Up\nSELECT 1;\n")
    assert lock.problems(project) == [
        "migrations: 0006_skipped_five.sql: version 6 leaves a gap (expected 0005_*.sql next)"
    ]
    with pytest.raises(lock.LockError):
        lock.write(project)


def test_new_file_below_head_and_duplicates_fail(tmp_path: Path) -> None:
    project = _project(tmp_path)
    lock.write(project)
    (project / "migrations" / "0002_collides.sql").write_text("-- +goose Up\nSELECT 1;\n")
    found = lock.problems(project)
    assert "migrations/0002_collides.sql: new file numbered 2, at or below the locked head 0004" in found
    assert any("0002_collides.sql: version 2 is also used by" in line for line in found)


def test_new_file_continuing_numbering_is_appended(tmp_path: Path) -> None:
    project = _project(tmp_path)
    lock.write(project)
    before = (project / "migrations" / lock.LOCK_NAME).read_text()
    (project / "migrations" / "0005_next.sql").write_text("-- +goose Up\nSELECT 1;\n")
    assert lock.main(project, ["--check"]) == 0  # unlocked but contiguous: the build may go on
    assert [f.name for f in lock.write(project)] == ["0005_next.sql"]
    after = (project / "migrations" / lock.LOCK_NAME).read_text()
    assert after.startswith(before) and after.endswith("  0005_next.sql\n")


def test_malformed_lock_line_is_named(tmp_path: Path) -> None:
    project = _project(tmp_path)
    lock.write(project)
    path = project / "migrations" / lock.LOCK_NAME
    path.write_text(path.read_text() + "deadbeef 0005_x.sql\n")
    found = lock.problems(project)
    assert len(found) == 1 and found[0].startswith(f"{path}:8: not '<sha256>  <NNNN_name.sql>'")


@pytest.mark.parametrize("job", ["freeze", "build-rpm", "build-deb"])
def test_build_refuses_before_freezing_one_line_per_problem(tmp_path: Path, job: str) -> None:
    """`python -m owrelease <job>` on a tree that breaks its lock: exit 1, nothing frozen or built."""
    project = _project(tmp_path)
    locked = lock.write(project)
    (project / "migrations" / "0002_audit_events_taxonomy.sql").unlink()
    edited = project / "migrations" / "0003_job_queue.sql"
    edited.write_text(edited.read_text() + "-- edited after release\n")
    shutil.copytree(REPO / "packaging", project / "packaging", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "openwatch").mkdir()
    shutil.copy2(REPO / "openwatch" / "__init__.py", project / "openwatch" / "__init__.py")
    out = subprocess.run(
        [sys.executable, "-m", "owrelease", job],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project / "packaging")},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    prefix = f"owrelease {job}: migrations.lock: "
    assert out.stderr.splitlines() == [
        f"{prefix}migrations/0002_audit_events_taxonomy.sql: locked migration removed",
        f"{prefix}migrations/0003_job_queue.sql: locked migration edited "
        f"(sha256 {lock._sha256(edited)[:12]}, locked {locked[2].sha256[:12]})",
        f"{prefix}migrations: 0003_job_queue.sql: version 3 leaves a gap (expected 0002_*.sql next)",
        f"owrelease {job}: 3 lock problem(s): nothing was built",
    ]
    assert not (project / "build").exists() and not (project / "dist").exists()
    assert not (project / "openwatch" / "_build.py").exists()
