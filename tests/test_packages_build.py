"""The built .rpm and .deb, checked with the real tools (rpm -qp, dpkg-deb, rpm2cpio, systemd-analyze).

Both packages are built once per session by the `release_build` fixture (conftest.py), which reuses the
freeze cache in build/freeze/.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from owrelease import build, freeze, model

from tests.conftest import ROOT, ReleaseBuild

pytestmark = [pytest.mark.packages, pytest.mark.slow]

PKG = model.load()
PEP440 = model.app_version()
VERSION = PKG.version(PEP440)
RPM_VERIFY = {"md5": 1 << 0, "size": 1 << 1, "mtime": 1 << 5, "mode": 1 << 6, "user": 1 << 3, "group": 1 << 4}


def _run(*argv: str, stdin: bytes | None = None) -> str:
    res = subprocess.run(argv, capture_output=True, input=stdin, check=False)
    assert res.returncode == 0, f"{argv}: {res.stderr.decode(errors='replace')}"
    return res.stdout.decode()


def _rpmq(rpm: Path, *args: str) -> str:
    return _run("rpm", "-qp", *args, str(rpm))


def _without_heredocs(script: str) -> str:
    """The script minus the text it only prints (the next-steps notes)."""
    return re.sub(r"<<'(\w+)'\n.*?\n\1\n", "\n", script, flags=re.S)


def _mode(text: str) -> int:
    return int(text, 8) & 0o7777


@pytest.fixture(scope="module")
def rb(release_build: ReleaseBuild) -> ReleaseBuild:
    return release_build


# --- names, checksums, cache -------------------------------------------------------------------------


def test_names_are_derived_from_the_version(rb: ReleaseBuild) -> None:
    assert rb.rpm.name == f"openwatch-{VERSION.upstream}-{VERSION.release}.x86_64.rpm"
    assert rb.deb.name == f"openwatch_{VERSION.upstream}-{VERSION.release}_amd64.deb"
    if PEP440 == "0.2.0rc1":
        assert rb.rpm.name == "openwatch-0.2.0~rc1-1.x86_64.rpm"
        assert rb.deb.name == "openwatch_0.2.0~rc1-1_amd64.deb"


def test_sha256sums_cover_every_file(rb: ReleaseBuild) -> None:
    listed = (rb.dist / "SHA256SUMS").read_text().splitlines()
    names = sorted(p.name for p in rb.dist.iterdir() if p.name != "SHA256SUMS")
    assert sorted(ln.split("  ", 1)[1] for ln in listed) == names
    out = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=rb.dist, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_second_freeze_reuses_the_cache(rb: ReleaseBuild) -> None:
    messages: list[str] = []
    cache = ROOT / "build" / "freeze"
    again = freeze.freeze(
        build.default_builder(lambda _m: None),  # the builder the fixture used
        src=rb.src,
        cache=cache,
        stamp=(rb.frozen.commit, rb.frozen.build_time, buildenv_epoch()),
        log=messages.append,
    )
    assert again.cached and again.path == rb.frozen.path and again.sha256 == rb.frozen.sha256
    assert messages == [f"freeze: reusing build/freeze/{again.key}/openwatch (nothing changed)"]
    meta = again.path.with_name("openwatch.json").read_text()
    for key in ("sha256", "size", "glibc_floor", "builder", "key"):
        assert f'"{key}"' in meta


def buildenv_epoch() -> int:
    return freeze.build_stamp(ROOT)[2]


def test_packages_are_reproducible(rb: ReleaseBuild, tmp_path: Path) -> None:
    again = {
        fmt: build.build_package(fmt, tmp_path, frozen=rb.frozen, log=lambda _m: None)
        for fmt in ("rpm", "deb")
    }
    for fmt, path in again.items():
        first = rb.rpm if fmt == "rpm" else rb.deb
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(first.read_bytes()).digest(), fmt


# --- RPM ---------------------------------------------------------------------------------------------


def test_rpm_identity(rb: ReleaseBuild) -> None:
    out = _rpmq(rb.rpm, "--qf", "%{NAME}|%{VERSION}|%{RELEASE}|%{EPOCH}|%{LICENSE}|%{ARCH}|%{BUILDHOST}")
    assert out == f"openwatch|{VERSION.upstream}|{VERSION.release}|(none)|MIT|x86_64|reproducible"


def test_rpm_paths_modes_owners(rb: ReleaseBuild) -> None:
    dump = {}
    for line in _rpmq(rb.rpm, "--dump").splitlines():
        f = line.split()
        dump[f[0]] = (_mode(f[4]), f[5], f[6], f[7] == "1")
    declared = {e.path: e for e in PKG.payload("rpm")}
    assert set(dump) == set(declared)
    for path, e in declared.items():
        assert dump[path] == (e.mode, e.owner, e.group, e.is_conffile), path
    assert not dump["/etc/openwatch/secrets.env"][0] & 0o007
    for g in PKG.generated():
        assert g.path not in dump  # never in the payload, not even %ghost: rpm -e leaves them


def test_rpm_config_flags_and_secret_verify(rb: ReleaseBuild) -> None:
    assert _rpmq(rb.rpm, "-c").split() == PKG.conffiles("rpm")
    query = "[%{FILENAMES} %{FILEFLAGS:fflags} %{FILEVERIFYFLAGS}\n]"
    flags: dict[str, tuple[str, str]] = {}
    for line in _rpmq(rb.rpm, "--qf", query).splitlines():
        path, fflags, vflags = line.rsplit(" ", 2)
        flags[path] = (fflags, vflags)
    for path in PKG.conffiles("rpm"):
        assert "c" in flags[path][0] and "n" in flags[path][0], (path, flags[path])
    secret = int(flags["/etc/openwatch/secrets.env"][1])
    config = int(flags["/etc/openwatch/openwatch.toml"][1])
    for bit in ("md5", "size", "mtime"):
        assert not secret & RPM_VERIFY[bit] and config & RPM_VERIFY[bit], bit
    for bit in ("mode", "user", "group"):
        assert secret & RPM_VERIFY[bit], bit


def test_rpm_requires(rb: ReleaseBuild) -> None:
    req = _rpmq(rb.rpm, "--requires").splitlines()
    assert f"glibc >= {rb.frozen.glibc_floor}" in req
    assert "openssl" in req and "shadow-utils" in req
    assert not [r for r in req if "postgres" in r]
    pre = _rpmq(rb.rpm, "--qf", "[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]").splitlines()
    assert "shadow-utils pre" in pre and "openssl post" in pre


def test_rpm_scripts(rb: ReleaseBuild, tmp_path: Path) -> None:
    for tag in ("PREIN", "POSTIN", "PREUN", "POSTUN"):
        body = _rpmq(rb.rpm, "--qf", f"%{{{tag}}}")
        assert body.startswith("set -e\n"), tag
        script = tmp_path / f"{tag}.sh"
        script.write_text(body)
        _run("sh", "-n", str(script))
        code = _without_heredocs(body)
        assert not re.search(r"systemctl\s+(start|restart|try-restart|reload-or-restart|enable)", code), tag
        assert "openwatch migrate" not in code and "/usr/bin/openwatch" not in code, tag
    prein = _rpmq(rb.rpm, "--qf", "%{PREIN}")
    assert "getent passwd openwatch" in prein and "useradd --system" in prein
    assert "--shell /usr/sbin/nologin" in prein and "--home-dir /var/lib/openwatch" in prein
    postin = _rpmq(rb.rpm, "--qf", "%{POSTIN}")
    assert "[ -d /run/systemd/system ]" in postin and "umask 077" in postin
    assert "sudo -u openwatch openwatch migrate" in postin and "systemctl enable --now" in postin
    preun = _rpmq(rb.rpm, "--qf", "%{PREUN}")
    assert 'if [ "$1" -eq 0 ]' in preun and "disable" in preun and "systemctl stop" in preun


def test_rpm_changelog(rb: ReleaseBuild) -> None:
    first = _rpmq(rb.rpm, "--changelog").splitlines()[0]
    assert re.fullmatch(rf"\* \w{{3}} \w{{3}} \d\d \d{{4}} .+ <.+> - {re.escape(VERSION.rpm_evr)}", first), (
        first
    )


# --- DEB ---------------------------------------------------------------------------------------------


def _deb_members(deb: Path) -> dict[str, tarfile.TarInfo]:
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    tmp = deb.parent / ".fsys.tar"
    tmp.write_bytes(data)
    try:
        with tarfile.open(tmp) as tar:
            return {
                "/" + m.name.removeprefix("./").rstrip("/"): m for m in tar.getmembers() if m.name != "./"
            }
    finally:
        tmp.unlink()


def _deb_control(deb: Path) -> dict[str, str]:
    data = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True).stdout
    tmp = deb.parent / ".ctrl.tar"
    tmp.write_bytes(data)
    try:
        with tarfile.open(tmp) as tar:
            return {
                m.name.removeprefix("./"): tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile()
            } | {
                "_modes": " ".join(
                    f"{m.name.removeprefix('./')}={m.mode:04o}" for m in tar.getmembers() if m.isfile()
                )
            }
    finally:
        tmp.unlink()


def test_deb_control(rb: ReleaseBuild) -> None:
    info = _run("dpkg-deb", "-I", str(rb.deb))
    assert f" Version: {VERSION.deb}\n" in info
    assert " Architecture: amd64\n" in info
    depends = re.search(r"^ Depends: (.*)$", info, re.M).group(1)  # type: ignore[union-attr]
    assert depends.split(", ")[0] == f"libc6 (>= {rb.frozen.glibc_floor})"
    assert "openssl" in depends and "passwd" in depends and "postgres" not in depends
    assert _run("dpkg-deb", "-f", str(rb.deb), "Version").strip() == VERSION.deb


def test_deb_paths_modes_all_root_owned(rb: ReleaseBuild) -> None:
    members = _deb_members(rb.deb)
    declared = {e.path: e for e in PKG.payload("deb")}
    assert set(declared) <= set(members)
    extra = {p for p in set(members) - set(declared) if not members[p].isdir()}
    assert not extra, f"undeclared files: {extra}"
    for path, e in declared.items():
        m = members[path]
        assert (m.mode & 0o7777, m.isdir(), m.uname, m.gname) == (e.mode, e.is_dir, "root", "root"), path
    # undeclared parents are plain 0755 directories
    for path, m in members.items():
        if path not in declared:
            assert m.isdir() and m.mode & 0o7777 == 0o755, path
    assert not members["/etc/openwatch/secrets.env"].mode & 0o007  # not world-readable, even before postinst
    for g in PKG.generated():
        assert g.path not in members
    listing = _run("dpkg-deb", "-c", str(rb.deb))
    assert "./usr/bin/openwatch" in listing


def test_deb_conffiles_md5sums_scripts(rb: ReleaseBuild, tmp_path: Path) -> None:
    ctrl = _deb_control(rb.deb)
    assert ctrl["conffiles"].split() == PKG.conffiles("deb")
    root = tmp_path / "x"
    _run("dpkg-deb", "-x", str(rb.deb), str(root))
    sums = dict(reversed(ln.split("  ", 1)) for ln in ctrl["md5sums"].splitlines())
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert set(sums) == {f for f in files if "/" + f not in PKG.conffiles("deb")}
    for rel, digest in sums.items():
        assert hashlib.md5((root / rel).read_bytes(), usedforsecurity=False).hexdigest() == digest, rel
    modes = dict(kv.split("=") for kv in ctrl["_modes"].split())
    for name in ("postinst", "prerm", "postrm"):
        assert modes[name] == "0755"
        assert ctrl[name].startswith("#!/bin/sh\n") and "\nset -e\n" in ctrl[name]
        (tmp_path / name).write_text(ctrl[name])
        _run("sh", "-n", str(tmp_path / name))
        code = _without_heredocs(ctrl[name])
        assert not re.search(r"systemctl\s+(start|restart|try-restart|reload-or-restart|enable)", code), name
        assert "openwatch migrate" not in code, name
    postinst = ctrl["postinst"]
    for e in PKG.ownership_fixes("deb"):
        assert f"chown {e.owner}:{e.group} {e.path}; chmod {e.mode_str} {e.path};" in postinst
    assert "useradd --system" in postinst and 'if [ -z "$2" ]' in postinst
    assert "rm -rf /etc/openwatch" in ctrl["postrm"].split("purge)", 1)[1].split(";;", 1)[0]
    assert "remove)" in ctrl["prerm"] and "disable" in ctrl["prerm"]
    changelog = root / "usr/share/doc/openwatch/changelog.Debian.gz"
    assert _run("gzip", "-t", str(changelog)) == ""
    assert changelog.read_bytes()[4:8] == b"\0\0\0\0"  # gzip -n: no timestamp


# --- the binary out of each package --------------------------------------------------------------------


@pytest.fixture(scope="module")
def binaries(rb: ReleaseBuild, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rpm_root = tmp_path_factory.mktemp("rpmx")
    cpio = subprocess.run(["rpm2cpio", str(rb.rpm)], capture_output=True, check=True).stdout
    subprocess.run(["cpio", "-idm", "--quiet"], input=cpio, cwd=rpm_root, check=True)
    deb_root = tmp_path_factory.mktemp("debx")
    subprocess.run(["dpkg-deb", "-x", str(rb.deb), str(deb_root)], check=True)
    return {"rpm": rpm_root / "usr/bin/openwatch", "deb": deb_root / "usr/bin/openwatch"}


@pytest.mark.parametrize("fmt", ["rpm", "deb"])
def test_packaged_binary_is_the_frozen_one(rb: ReleaseBuild, binaries: dict[str, Path], fmt: str) -> None:
    data = binaries[fmt].read_bytes()
    assert hashlib.sha256(data).hexdigest() == rb.frozen.sha256  # rpmbuild post-processing left it alone


@pytest.mark.parametrize("fmt", ["rpm", "deb"])
def test_packaged_binary_runs(rb: ReleaseBuild, binaries: dict[str, Path], fmt: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")}
    ver = subprocess.run(
        [str(binaries[fmt]), "--version"], capture_output=True, text=True, env=env, timeout=60
    )
    assert ver.returncode == 0, ver.stderr
    assert ver.stdout.startswith(f"openwatch {PEP440}")
    assert rb.frozen.commit in ver.stdout
    listed = subprocess.run(
        [str(binaries[fmt]), "migrate", "list"], capture_output=True, text=True, env=env, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    shipped = sorted(p.name for p in (rb.src / "migrations").glob("*.sql"))
    assert shipped and all(name in listed.stdout for name in shipped)


# --- the unit -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unit_root(binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with the host's units, the packaged unit, binary and man page (toolchain-notes section 5)."""
    root = tmp_path_factory.mktemp("unitroot")
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    pkg_root = binaries["deb"].parents[2]
    for rel in (
        "usr/bin/openwatch",
        "usr/lib/systemd/system/openwatch.service",
        "usr/share/man/man1/openwatch.1.gz",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(pkg_root / rel, root / rel)
    return root


def test_systemd_analyze_verify_prints_nothing(unit_root: Path) -> None:
    # MANPATH: Documentation=man:openwatch(1) is checked with man(1), against the packaged page
    env = {**os.environ, "MANPATH": str(unit_root / "usr/share/man")}
    res = subprocess.run(
        ["systemd-analyze", "verify", f"--root={unit_root}", "openwatch.service"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    # and it can fail: without the binary the ExecStart= check speaks up
    (unit_root / "usr/bin/openwatch").rename(unit_root / "usr/bin/openwatch.off")
    try:
        res = subprocess.run(
            ["systemd-analyze", "verify", f"--root={unit_root}", "openwatch.service"],
            capture_output=True,
            text=True,
            env=env,
        )
        assert res.returncode != 0 and "openwatch" in res.stderr
    finally:
        (unit_root / "usr/bin/openwatch.off").rename(unit_root / "usr/bin/openwatch")


def test_systemd_security_score(unit_root: Path) -> None:
    res = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=true",
            f"--root={unit_root}",
            "--no-pager",
            "openwatch.service",
        ],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for openwatch\.service: (\d+\.\d+)", res.stdout)
    assert match, res.stdout + res.stderr
    score = float(match.group(1))
    print(f"systemd-analyze security: openwatch.service exposure {score}")
    assert score <= 2.0
