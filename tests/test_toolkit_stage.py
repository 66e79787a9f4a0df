"""owrelease.stage and owrelease.buildenv: payload layout, modes, mtimes, gzip -n, tool messages."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

import pytest
from owrelease import buildenv, model, render, stage

FACTS = render.BuildFacts(pep440="0.2.0rc1", glibc_floor="2.28", arch_rpm="x86_64", arch_deb="amd64")


@pytest.mark.parametrize("fmt", ["rpm", "deb"])
def test_stage_lays_out_exactly_the_declared_payload(tmp_path: Path, fmt: str) -> None:
    pkg = model.load()
    binary = tmp_path / "openwatch.bin"
    binary.write_bytes(b"\x7fELF fake")
    sbom = tmp_path / "openwatch.cdx.json"  # the binary's SBOM, shipped as a doc file
    sbom.write_text("{}\n")
    rendered = render.payload_files(pkg, render.context(pkg, FACTS), fmt)
    old = os.umask(0o077)  # a hostile umask must not leak into the payload
    try:
        files = stage.stage(
            pkg,
            fmt,
            tmp_path / "root",
            rendered,
            {"openwatch": binary, "openwatch.cdx.json": sbom},
            1_700_000_000,
        )
    finally:
        os.umask(old)
    root = tmp_path / "root"
    declared = {e.path: e for e in pkg.payload(fmt)}
    assert {"/" + f.relative_to(root).as_posix() for f in files} == {
        p for p, e in declared.items() if not e.is_dir
    }
    for path, e in declared.items():
        st = (root / e.relpath).lstat()
        assert stat.S_IMODE(st.st_mode) == e.mode, path
        assert stat.S_ISDIR(st.st_mode) == e.is_dir, path
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            full = Path(dirpath, name)
            assert full.lstat().st_mtime == 1_700_000_000, full
            if full.is_dir() and "/" + full.relative_to(root).as_posix() not in declared:
                assert stat.S_IMODE(full.lstat().st_mode) == 0o755, full
    assert (root / "usr/bin/openwatch").read_bytes() == b"\x7fELF fake"
    man = (root / "usr/share/man/man1/openwatch.1.gz").read_bytes()
    assert gzip.decompress(man).decode() == rendered["manpage"]
    assert not (root / "etc/openwatch/tls/cert.pem").exists()
    assert (root / "usr/share/doc/openwatch/changelog.Debian.gz").exists() == (fmt == "deb")


def test_gzip_is_reproducible_without_name_or_time() -> None:
    a = stage.gzip_bytes(b"hello")
    assert a == stage.gzip_bytes(b"hello")
    assert a[4:8] == b"\0\0\0\0" and not a[3] & 0x08  # MTIME zero, no FNAME flag


def test_missing_tool_is_one_line_naming_the_package() -> None:
    with pytest.raises(buildenv.ToolMissing) as err:
        buildenv.require("rpmbuild-does-not-exist")
    assert "\n" not in str(err.value) and "apt-get install -y" in str(err.value)
    assert buildenv.require("sh").endswith("/sh")


def test_build_stamp_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert buildenv.iso_utc(0) == "1970-01-01T00:00:00Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert buildenv.source_date_epoch() == 1_700_000_000
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert buildenv.source_date_epoch() > 1_700_000_000  # the last commit's time
    commit = buildenv.commit_id()
    assert len(commit.removesuffix("-dirty")) >= 7
    assert buildenv.arch() == ("x86_64", "amd64")
