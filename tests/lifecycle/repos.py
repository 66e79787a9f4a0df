"""Local package repositories, made the way a release engineer makes them: apt-ftparchive for apt,
createrepo_c for dnf, plus the small ``fakesys`` RPM that tells rpm what a Debian root already has."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from .roots import Root, run


class AptRepo:
    """A flat trusted repository inside the root (``deb [trusted=yes] file:/srv/aptrepo ./``)."""

    INNER = "/srv/aptrepo"

    def __init__(self, root: Root) -> None:
        self.root = root
        self.dir = root.file(self.INNER)
        self.dir.mkdir(parents=True, exist_ok=True)
        root.file("/etc/apt/sources.list.d/openwatch.list").write_text(
            f"deb [trusted=yes] file:{self.INNER} ./\n"
        )
        # Only this repository: the tests must not depend on the network once the base exists.
        root.file("/etc/apt/sources.list").write_text("")

    def publish(self, *debs: Path) -> None:
        for deb in debs:
            shutil.copy2(deb, self.dir / deb.name)
        (self.dir / "Packages").write_text(_ftparchive(["packages", "."], self.dir))
        run(["gzip", "-9kf", self.dir / "Packages"])
        # `apt-ftparchive release .` run in the repo would list a stale Release of its own: write it
        # outside, then move it in.
        (self.dir / "Release").unlink(missing_ok=True)
        release = _ftparchive(["release", "."], self.dir)
        (self.dir / "Release").write_text(release)
        self.root.chroot("apt-get", "update", "-o", "APT::Update::Error-Mode=any")


def _ftparchive(args: list[str], cwd: Path) -> str:
    # apt-ftparchive writes paths relative to its working directory.
    return run(["sh", "-c", 'cd "$1" && shift && exec apt-ftparchive "$@"', "sh", str(cwd), *args]).stdout


class RpmRepo:
    """A createrepo_c repository in a host directory, for ``dnf --installroot``."""

    def __init__(self, path: Path) -> None:
        self.dir = path
        self.dir.mkdir(parents=True, exist_ok=True)

    def publish(self, *rpms: Path) -> None:
        for rpm in rpms:
            shutil.copy2(rpm, self.dir / rpm.name)
        if (self.dir / "repodata").exists():
            run(["createrepo_c", "--update", self.dir])
        else:
            run(["createrepo_c", self.dir])


REQ_RE = re.compile(r"^(?P<name>\S+)(?:\s+(?P<op>[<>=]+)\s+(?P<ver>\S+))?$")


def rpm_requires(rpm: Path) -> list[tuple[str, str | None]]:
    """What ``rpm`` requires from the system (rpmlib features and self-provided names left out)."""
    provides = {line.split()[0] for line in run(["rpm", "-qp", "--provides", rpm]).stdout.splitlines()}
    out = []
    for line in run(["rpm", "-qp", "--requires", rpm]).stdout.splitlines():
        m = REQ_RE.match(line.strip())
        if not m or m["name"].startswith("rpmlib(") or m["name"] in provides:
            continue
        versioned = m["op"] is not None and (">" in m["op"] or m["op"] == "=")
        out.append((m["name"], m["ver"] if versioned else None))
    return sorted(set(out))


def build_fakesys(rpm: Path, root: Root, workdir: Path) -> Path:
    """A noarch RPM that provides, for rpm's dependency check, what the Debian root really has: the
    scriptlet shell, shadow-utils (useradd/groupadd from Debian's passwd), glibc at the root's real libc6
    version, and whatever else the package requires. Written and built by the test (rpmbuild -bb)."""
    libc = root.chroot("dpkg-query", "-W", "-f=${Version}", "libc6").stdout.split("-")[0]
    assert root.file("/bin/sh").exists() and root.file("/usr/sbin/useradd").exists()
    provides = []
    for name, version in rpm_requires(rpm):
        if name == "glibc":
            assert version is None or _vercmp(libc, version) >= 0, f"root libc {libc} < required {version}"
            provides.append(f"glibc = {libc}")
        elif version:
            provides.append(f"{name} = {version}")
        else:
            provides.append(name)
    for always in ("/bin/sh", "shadow-utils"):
        if always not in {p.split()[0] for p in provides}:
            provides.append(always)
    top = Path(tempfile.mkdtemp(prefix="fakesys.", dir=workdir))
    spec = top / "fakesys.spec"
    spec.write_text(
        "Name: fakesys\nVersion: 1.0\nRelease: 1\nSummary: what the Debian root provides, for rpm\n"
        "License: MIT\nBuildArch: noarch\n"
        + "".join(f"Provides: {p}\n" for p in provides)
        + "\n%description\nDeclares the Debian root's own shell, shadow tools and C library to rpm.\n"
        "\n%files\n"
    )
    run(["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", "_build_id_links none", spec])
    (built,) = (top / "RPMS/noarch").glob("fakesys-*.rpm")
    return built


def _vercmp(a: str, b: str) -> int:
    proc = run(["dpkg", "--compare-versions", a, "lt", b], check=False)
    return -1 if proc.returncode == 0 else 0 if a == b else 1
