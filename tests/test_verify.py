"""verify on real packages built by the toolkit, and on deliberately broken ones (each caught by one line)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tomllib
import zlib
from pathlib import Path

import pytest
from owrelease import build, deb, model, rpm, verify
from owrelease.inspect import extract_file, read_package

pytestmark = [pytest.mark.packages, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def frozen() -> build.freeze.FrozenBinary:
    return build.do_freeze(root=REPO, log=lambda _m: None)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, frozen: build.freeze.FrozenBinary) -> dict[str, Path]:
    dist = tmp_path_factory.mktemp("dist")
    return {
        fmt: build.build_package(fmt, dist, root=REPO, frozen=frozen, log=lambda _m: None)
        for fmt in ("rpm", "deb")
    }


def _facts(frozen: build.freeze.FrozenBinary) -> build.render.BuildFacts:
    return build.facts_for(model.app_version(REPO), frozen.glibc_floor)


def _model_with(change: dict[str, dict[str, object]]) -> model.Package:
    """The declaration with some [[path]] fields changed (by id)."""
    data = tomllib.loads((REPO / "packaging" / "package.toml").read_text())
    for entry in data["path"]:
        entry.update(change.get(entry["id"], {}))
    return model.parse(data)


def _repack_deb(src: Path, dest: Path, edit: object) -> Path:
    """dpkg-deb -R, let `edit(root)` change the tree, dpkg-deb -b with root-owned entries."""
    root = dest.parent / "repack-root"
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-R", str(src), str(root)], check=True)
    edit(root)  # type: ignore[operator]
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "-b", str(root), str(dest)],
        check=True,
        capture_output=True,
    )
    return dest


def test_good_build_has_no_difference(good: dict[str, Path]) -> None:
    pkg, pep440 = model.load(REPO / "packaging" / "package.toml"), model.app_version(REPO)
    views = {fmt: read_package(p) for fmt, p in good.items()}
    assert verify.verify_view(views["rpm"], pkg, pep440) == []
    assert verify.verify_view(views["deb"], pkg, pep440) == []
    assert verify.compare_formats(views["rpm"], views["deb"], pkg) == []
    # the DEB's ownership comes from the postinst: secrets.env is root:openwatch 0640 in both
    for view in views.values():
        secret = view.entries["/etc/openwatch/secrets.env"]
        assert (secret.owner, secret.group, secret.mode, secret.config) == ("root", "openwatch", 0o640, True)


def test_embedded_migrations_equal_the_tree_both_ways(good: dict[str, Path], tmp_path: Path) -> None:
    tree = verify._tree(REPO)
    assert len(tree) >= 30
    for fmt, path in good.items():
        exe = tmp_path / f"openwatch.{fmt}"
        exe.write_bytes(extract_file(path, "/usr/bin/openwatch"))
        assert verify.archive_migrations(exe) == tree
        assert verify.running_migrations(exe) == tree


def test_wrong_mode_is_one_line(frozen: build.freeze.FrozenBinary, tmp_path: Path) -> None:
    broken = _model_with({"secrets": {"mode": "0600"}})
    out = deb.build(broken, _facts(frozen), frozen.path, tmp_path / "dist", tmp_path / "work", 1700000000)
    lines = verify.verify_view(
        read_package(out), model.load(REPO / "packaging" / "package.toml"), model.app_version(REPO)
    )
    assert lines == [f"{out.name}: /etc/openwatch/secrets.env: mode: 0600, declared 0640"]


def test_rpm_missing_config_flag_and_wrong_group(frozen: build.freeze.FrozenBinary, tmp_path: Path) -> None:
    broken = _model_with({"config": {"kind": "data"}, "confdir": {"group": "root"}})
    out = rpm.build(broken, _facts(frozen), frozen.path, tmp_path / "dist", tmp_path / "work", 1700000000)
    lines = verify.verify_view(
        read_package(out), model.load(REPO / "packaging" / "package.toml"), model.app_version(REPO)
    )
    assert sorted(lines) == [
        f"{out.name}: /etc/openwatch/openwatch.toml: %config(noreplace): not flagged, declared config",
        f"{out.name}: /etc/openwatch: group: root, declared openwatch",
    ]


def test_deb_missing_conffile_flag(good: dict[str, Path], tmp_path: Path) -> None:
    def drop_conffile(root: Path) -> None:
        conffiles = root / "DEBIAN" / "conffiles"
        kept = [line for line in conffiles.read_text().splitlines() if not line.endswith("/secrets.env")]
        conffiles.write_text("\n".join(kept) + "\n")

    out = _repack_deb(good["deb"], tmp_path / good["deb"].name, drop_conffile)
    view = read_package(out)
    pkg = model.load(REPO / "packaging" / "package.toml")
    assert verify.verify_view(view, pkg, model.app_version(REPO)) == [
        # a conffile is left out of md5sums; a plain file must be in it
        f"{out.name}: /etc/openwatch/secrets.env: not in md5sums",
        f"{out.name}: /etc/openwatch/secrets.env: conffile: not flagged, declared secret",
    ]
    assert verify.compare_formats(read_package(good["rpm"]), view, pkg) == [
        f"{good['rpm'].name} vs {out.name}: /etc/openwatch/secrets.env: config: rpm True, deb False"
    ]


def test_undeclared_file_and_postinst_ownership_change(good: dict[str, Path], tmp_path: Path) -> None:
    def add_and_chown(root: Path) -> None:
        extra = root / "usr/share/openwatch/extra.txt"
        extra.parent.mkdir(parents=True)
        extra.write_text("not declared\n")
        postinst = root / "DEBIAN" / "postinst"
        postinst.write_text(
            postinst.read_text().replace(
                "chown openwatch:openwatch /var/log/openwatch", "chown root:root /var/log/openwatch"
            )
        )

    out = _repack_deb(good["deb"], tmp_path / good["deb"].name, add_and_chown)
    lines = verify.verify_view(
        read_package(out), model.load(REPO / "packaging" / "package.toml"), model.app_version(REPO)
    )
    assert sorted(lines) == sorted(
        [
            f"{out.name}: /var/log/openwatch: owner: root, declared openwatch",
            f"{out.name}: /var/log/openwatch: group: root, declared openwatch",
            f"{out.name}: /usr/share/openwatch: undeclared dir in the package",
            f"{out.name}: /usr/share/openwatch/extra.txt: undeclared file in the package",
            f"{out.name}: /usr/share/openwatch/extra.txt: not in md5sums",
        ]
    )


def alter_archive_member(binary: Path, member: str, new: bytes) -> None:
    """Rewrite one member of a PyInstaller onefile archive in place (same file size, offsets kept)."""
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(binary))
    offset, length, _ulen, flag, _type = reader.toc[member]
    payload = zlib.compress(new, 9) if flag else new
    assert len(payload) <= length, "the altered member must fit in its slot"
    data = bytearray(binary.read_bytes())
    start = reader._start_offset
    data[start + offset : start + offset + len(payload)] = payload
    # find the member's TOC entry and set its stored and uncompressed lengths
    cookie = reader._end_offset - struct.calcsize("!8sIIII64s")
    _magic, _plen, toc_offset, toc_length, _pyver, _lib = struct.unpack_from("!8sIIII64s", data, cookie)
    pos = start + toc_offset
    end = pos + toc_length
    while pos < end:
        entry_len, _off, _len, _ulen2, _flag, _typ = struct.unpack("!IIIIBc", data[pos : pos + 18])
        name = bytes(data[pos + 18 : pos + entry_len]).rstrip(b"\0").decode()
        if name == member:
            struct.pack_into("!II", data, pos + 8, len(payload), len(new))
            break
        pos += entry_len
    else:
        raise AssertionError(f"{member} not in the TOC")
    binary.write_bytes(bytes(data))


def test_migration_altered_inside_the_binary(good: dict[str, Path], tmp_path: Path) -> None:
    exe = tmp_path / "openwatch"
    exe.write_bytes(extract_file(good["deb"], "/usr/bin/openwatch"))
    exe.chmod(0o755)
    original = (REPO / "migrations" / "0003_job_queue.sql").read_bytes()
    altered = original[: original.rstrip(b"\n").rfind(b"\n") + 1]  # the last line (a Down statement) dropped
    alter_archive_member(exe, "migrations/0003_job_queue.sql", altered)
    tree = verify._tree(REPO)
    sources = {"deb:archive": verify.archive_migrations(exe), "deb:run": verify.running_migrations(exe)}
    rows, failures = verify.compare_migrations(tree, sources)
    import hashlib

    sha = hashlib.sha256(altered).hexdigest()[:12]
    want = hashlib.sha256(original).hexdigest()[:12]
    assert failures == [
        f"deb:archive: migrations/0003_job_queue.sql: sha256 {sha}, migrations/ has {want}",
        f"deb:run: migrations/0003_job_queue.sql: sha256 {sha}, migrations/ has {want}",
    ]
    assert [r for r in rows if r[3] != "ok"] == [
        (3, "0003_job_queue.sql", want, "changed in deb:archive; changed in deb:run")
    ]
    table = verify.migration_table(rows, list(sources))
    assert "0003_job_queue.sql" in table and "changed in deb:run" in table


def test_missing_and_extra_migrations_are_named() -> None:
    tree = verify._tree(REPO)
    listed = [*tree[1:], verify.Migration(99, "0099_extra.sql", "0" * 64)]
    _rows, failures = verify.compare_migrations(tree, {"rpm:archive": listed})
    assert failures == [
        f"rpm:archive: migrations/{tree[0].name}: missing",
        "rpm:archive: migrations/0099_extra.sql: extra (not in migrations/)",
    ]


def test_main_on_a_good_build_passes_the_package_checks(
    good: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dist = good["rpm"].parent
    verify.main(REPO, dist, ["--no-gates"])
    out = capsys.readouterr().out
    section = out.split("== packages against packaging/package.toml")[1].split("== embedded migrations")[0]
    assert "FAIL" not in section
    assert "0001_initial.sql" in out
