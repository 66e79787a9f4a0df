"""Reproducibility: the toolkit builds the same bytes twice; a difference is named down to the member."""

from __future__ import annotations

from pathlib import Path

import pytest
from owrelease import build, repro
from owrelease.inspect import extract_file

from tests.test_verify import alter_archive_member

pytestmark = [pytest.mark.packages, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent


def test_two_builds_are_identical_and_a_change_is_named(tmp_path: Path) -> None:
    frozen = build.do_freeze(root=REPO, log=lambda _m: None)
    dists = [tmp_path / "a", tmp_path / "b"]
    for dist in dists:
        for fmt in ("rpm", "deb"):
            build.build_package(fmt, dist, root=REPO, frozen=frozen, log=lambda _m: None)
    assert repro.compare(*dists) == []

    # the second build's binary carries an altered migration: the .deb differs, and repro says where
    exe = tmp_path / "openwatch"
    deb = next(dists[1].glob("*.deb"))
    exe.write_bytes(extract_file(deb, "/usr/bin/openwatch"))
    sql = (REPO / "migrations" / "0002_audit_events_taxonomy.sql").read_bytes()
    alter_archive_member(
        exe, "migrations/0002_audit_events_taxonomy.sql", sql[: sql.rstrip(b"\n").rfind(b"\n") + 1]
    )
    diffs = repro.compare_binaries(frozen.path, exe, "openwatch")
    assert len(diffs) == 1
    assert diffs[0].startswith("openwatch: archive member migrations/0002_audit_events_taxonomy.sql: sha256 ")
