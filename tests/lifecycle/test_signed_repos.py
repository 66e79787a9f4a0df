"""Operators install and upgrade from the signed repositories that `nox -s repo` writes, with every check
on, using the files it wrote as shipped (openwatch.repo, openwatch.sources, the keys); and each kind of
tampering is refused by dnf or apt themselves, with their own error and a non-zero exit.

The trees are published by owrelease.repo.publish from dists signed by owrelease.sign with a throwaway key
(tests/signkeys.py); the newer version is published into the same tree as the first.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from owrelease import repo as owrepo
from owrelease import sign as owsign
from owrelease.signing import KEY_ARMORED, KEY_BINARY, Signer, key_from_env

from .packages import Build
from .repos import RpmRepo, build_fakesys
from .roots import Root, fresh_root, run

pytestmark = [pytest.mark.chroot, pytest.mark.slow, pytest.mark.usefixtures("timed")]
EPOCH = 1767225600
APT_STRICT = ("-o", "APT::Update::Error-Mode=any")
APT_KEEP = ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")


def _signer(key: object, epoch: int | None = EPOCH) -> Signer:
    return Signer(key_from_env(key.env()), epoch)  # type: ignore[attr-defined]


def _signed(build: Build, key: object, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for p in (build.rpm, build.deb):
        shutil.copy2(p, dest / p.name)
    with _signer(key) as s:
        owsign.sign_dist(dest, s, log=lambda _: None)
    return dest


@pytest.fixture(scope="module")
def dists(
    current: Build,
    newer: Build,
    signing_key: object,
    other_key: object,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Path]]:
    base = tmp_path_factory.mktemp("signed")
    yield {
        "current": _signed(current, signing_key, base / "current"),
        "newer": _signed(newer, signing_key, base / "newer"),
        "other": _signed(current, other_key, base / "other"),
    }


def _publish(dist: Path, tree: Path, key: object, url: str) -> None:
    with _signer(key, None) as s:
        owrepo.publish(dist, tree, s, url, log=lambda _: None)


def _resign(path: Path, key: object, *, clear: bool = False) -> None:
    with _signer(key, None) as s:
        if clear:
            s.clearsign(path.with_name("Release"), path)
        else:
            s.detach_sign(path, path.with_name(path.name + ".asc"))


def _flip(path: Path, offset_from_end: int = 4096) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


def _rpm_version(rpm: Path) -> str:
    return run(["rpm", "-qp", "--nosignature", "--qf", "%{VERSION}-%{RELEASE}", rpm]).stdout


def _said(text: str, message: str) -> list[str]:
    """The tool's error lines (for the log of a run): the expected message and every error line."""
    keep = ("E:", "Error", "error", "W:", "GPG", "Problem", "Import", message)
    return [ln.strip() for ln in text.splitlines() if any(k in ln for k in keep)]


# ------------------------------------------------------------------------------------------------- dnf


class Dnf:
    def __init__(self, r: Root, tree: Path, fakesys: Path) -> None:
        self.r = r
        self.reposdir = r.workdir / "yum.repos.d"
        self.reposdir.mkdir(exist_ok=True)
        shutil.copyfile(tree / "openwatch.repo", self.reposdir / "openwatch.repo")  # as shipped
        self.fakesys = RpmRepo(r.workdir / "fakesys")
        self.fakesys.publish(fakesys)

    def __call__(self, *args: str, check: bool = True):  # type: ignore[no-untyped-def]
        cmd = [
            "dnf", "-y", f"--installroot={self.r.path}", "--releasever=9",
            f"--setopt=reposdir={self.reposdir}", "--setopt=install_weak_deps=False",
            "--setopt=metadata_expire=0",
            # the dependency stand-in only (see repos.build_fakesys) is unsigned
            f"--repofrompath=fakesys,file://{self.fakesys.dir}", "--setopt=fakesys.gpgcheck=0",
            *args,
        ]  # fmt: skip
        try:
            return run(cmd, check=check)
        finally:
            # repo_gpgcheck starts one gpg-agent per repository and leaves it running
            for ring in self.r.path.glob("var/cache/dnf/*/pubring"):
                run(["gpgconf", "--homedir", ring, "--kill", "gpg-agent"], check=False)

    def installed(self) -> str:
        return run(["rpm", "--root", self.r.path, "-q", "--qf", "%{VERSION}-%{RELEASE}", "openwatch"]).stdout


@pytest.fixture(scope="module")
def fakesys_rpm(chroot_base: Path, current: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    keep = tmp_path_factory.mktemp("fakesys")
    with fresh_root(chroot_base, "fakesys") as r:
        built = build_fakesys(current.rpm, r, r.workdir)
        return Path(shutil.copy2(built, keep / built.name))


def test_dnf_signed_repo_install_upgrade_downgrade(
    chroot_base: Path,
    current: Build,
    newer: Build,
    dists: dict[str, Path],
    signing_key: object,
    fakesys_rpm: Path,
) -> None:
    with fresh_root(chroot_base, "dnf-signed") as r:
        tree = r.workdir / "repo"
        _publish(dists["current"], tree, signing_key, f"file://{tree}")
        dnf = Dnf(r, tree, fakesys_rpm)
        out = dnf("install", "openwatch").stdout
        assert "Importing GPG key" in out + "" or "imported" in out.lower(), out
        assert dnf.installed() == _rpm_version(current.rpm)
        _publish(dists["newer"], tree, signing_key, f"file://{tree}")
        assert {p.name for p in (tree / "rpm").glob("*.rpm")} == {current.rpm.name, newer.rpm.name}
        dnf("upgrade", "openwatch")
        assert dnf.installed() == _rpm_version(newer.rpm)
        dnf("downgrade", "openwatch")
        assert dnf.installed() == _rpm_version(current.rpm)


def _tamper_rpm(tree: Path, dists: dict[str, Path], key: object) -> None:
    """A payload byte changed, and the metadata remade and signed by the real key: only the rpm's own
    signature stands between the operator and the changed package."""
    (rpm,) = (tree / "rpm").glob("*.rpm")
    _flip(rpm)
    run(["createrepo_c", "--update", tree / "rpm"])
    _resign(tree / "rpm/repodata/repomd.xml", key)


def _other_key_rpm(tree: Path, dists: dict[str, Path], key: object) -> None:
    (rpm,) = (tree / "rpm").glob("*.rpm")
    shutil.copyfile(dists["other"] / rpm.name, rpm)
    run(["createrepo_c", "--update", tree / "rpm"])
    _resign(tree / "rpm/repodata/repomd.xml", key)


def _tamper_repomd(tree: Path, dists: dict[str, Path], key: object) -> None:
    md = tree / "rpm/repodata/repomd.xml"
    md.write_text(md.read_text().replace("<revision>", "<revision>1"))


def _unsign_repomd(tree: Path, dists: dict[str, Path], key: object) -> None:
    (tree / "rpm/repodata/repomd.xml.asc").unlink()


DNF_REFUSALS = {
    "tampered-rpm": (_tamper_rpm, "GPG check FAILED"),
    "other-key-rpm": (_other_key_rpm, "Import of key(s) didn't help, wrong key(s)?"),
    "tampered-repomd": (_tamper_repomd, "repomd.xml GPG signature verification error: Bad GPG signature"),
    "unsigned-repo": (_unsign_repomd, "GPG verification is enabled, but GPG signature is not available"),
}


@pytest.mark.parametrize("case", list(DNF_REFUSALS))
def test_dnf_refuses(
    chroot_base: Path, dists: dict[str, Path], signing_key: object, fakesys_rpm: Path, case: str
) -> None:
    tamper, message = DNF_REFUSALS[case]
    with fresh_root(chroot_base, f"dnf-{case}") as r:
        tree = r.workdir / "repo"
        _publish(dists["current"], tree, signing_key, f"file://{tree}")
        tamper(tree, dists, signing_key)
        dnf = Dnf(r, tree, fakesys_rpm)
        proc = dnf("install", "openwatch", check=False)
        text = proc.stdout + proc.stderr
        print(f"\n[refusal] dnf {case}: exit {proc.returncode}: " + " | ".join(_said(text, message)))
        assert proc.returncode != 0, text
        assert message in text, text
        assert run(["rpm", "--root", r.path, "-q", "openwatch"], check=False).returncode != 0


# ------------------------------------------------------------------------------------------------- apt

INNER = "/srv/openwatch"


def _apt_root(r: Root, dist: Path, key: object) -> Path:
    tree = r.file(INNER)
    _publish(dist, tree, key, f"file://{INNER}")
    r.file("/etc/apt/sources.list").write_text("")  # this repository only: no network
    r.put(tree / "openwatch.sources", "/etc/apt/sources.list.d/openwatch.sources")
    r.put(tree / KEY_BINARY, "/etc/apt/keyrings/openwatch-archive-keyring.gpg")
    assert (tree / KEY_ARMORED).is_file()
    return tree


def _deb_version(r: Root) -> str:
    return r.chroot("dpkg-query", "-W", "-f=${Version}", "openwatch").stdout


def _deb_file_version(deb: Path) -> str:
    return run(["dpkg-deb", "-f", deb, "Version"]).stdout.strip()


def test_apt_signed_repo_install_upgrade(
    chroot_base: Path, current: Build, newer: Build, dists: dict[str, Path], signing_key: object
) -> None:
    with fresh_root(chroot_base, "apt-signed") as r:
        tree = _apt_root(r, dists["current"], signing_key)
        r.chroot("apt-get", "update", *APT_STRICT)
        r.chroot("apt-get", "install", "-y", "--no-install-recommends", "openwatch")
        assert _deb_version(r) == _deb_file_version(current.deb)
        _publish(dists["newer"], tree, signing_key, f"file://{INNER}")
        assert len(list((tree / "deb/pool").rglob("*.deb"))) == 2
        r.chroot("apt-get", "update", *APT_STRICT)
        r.chroot(
            "apt-get", "install", "--only-upgrade", "-y", "--no-install-recommends", *APT_KEEP, "openwatch"
        )
        assert _deb_version(r) == _deb_file_version(newer.deb)


def _suite(tree: Path) -> Path:
    return tree / "deb/dists/stable"


def _unsign_release(tree: Path, dists: dict[str, Path], key: object, other: object) -> None:
    (_suite(tree) / "InRelease").unlink()
    (_suite(tree) / "Release.gpg").unlink()


def _other_key_release(tree: Path, dists: dict[str, Path], key: object, other: object) -> None:
    _resign(_suite(tree) / "InRelease", other, clear=True)
    (_suite(tree) / "Release.gpg").unlink()


def _tamper_packages(tree: Path, dists: dict[str, Path], key: object, other: object) -> None:
    for p in _suite(tree).glob("main/binary-*/Packages"):
        p.write_text(p.read_text().replace("Maintainer:", "Maintainer: x"))
        run(["gzip", "-9nkf", p])


def _swap_deb(tree: Path, dists: dict[str, Path], key: object, other: object) -> None:
    (deb,) = (tree / "deb/pool").rglob("*.deb")
    _flip(deb, 10)


# (tamper, step that must fail, message); "update" cases first run a good update, so that old index
# files exist: the trap where apt only warns and keeps them, unless Error-Mode=any
APT_REFUSALS = {
    "unsigned-repo": (_unsign_release, "fresh-update", "is not signed"),
    "no-longer-signed": (_unsign_release, "update", "is no longer signed"),
    "other-key": (_other_key_release, "update", "NO_PUBKEY"),
    "tampered-packages": (_tamper_packages, "fresh-update", "Hash Sum mismatch"),
    "swapped-deb": (_swap_deb, "install", "Hash Sum mismatch"),
}


@pytest.mark.parametrize("case", list(APT_REFUSALS))
def test_apt_refuses(
    chroot_base: Path, dists: dict[str, Path], signing_key: object, other_key: object, case: str
) -> None:
    tamper, step, message = APT_REFUSALS[case]
    with fresh_root(chroot_base, f"apt-{case}") as r:
        tree = _apt_root(r, dists["current"], signing_key)
        if step == "update":
            r.chroot("apt-get", "update", *APT_STRICT)
        tamper(tree, dists, signing_key, other_key)
        if step == "install":
            r.chroot("apt-get", "update", *APT_STRICT)
            proc = r.chroot("apt-get", "install", "-y", "--no-install-recommends", "openwatch", check=False)
        else:
            proc = r.chroot("apt-get", "update", *APT_STRICT, check=False)
        text = proc.stdout + proc.stderr
        print(f"\n[refusal] apt {case}: exit {proc.returncode}: " + " | ".join(_said(text, message)))
        assert proc.returncode == 100, text
        assert message in text, text
        assert r.chroot("dpkg-query", "-W", "openwatch", check=False).returncode != 0
