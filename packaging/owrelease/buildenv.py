"""Facts about the source tree and the host that every build step shares. stdlib only."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
from pathlib import Path

from owrelease.model import ROOT

# rpm and dpkg architecture names
_ARCH = {"x86_64": ("x86_64", "amd64"), "aarch64": ("aarch64", "arm64")}


class ToolMissing(RuntimeError):
    """A system tool is absent; the message is one line naming the package to install."""


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def source_date_epoch(root: Path = ROOT) -> int:
    """$SOURCE_DATE_EPOCH when set, else the last commit's time (reproducible-builds.org)."""
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        return int(env)
    stamp = _git(root, "log", "-1", "--format=%ct")
    return int(stamp) if stamp else 315532800


def commit_id(root: Path = ROOT) -> str:
    """Short commit id, with ``-dirty`` when the work tree differs from it."""
    sha = _git(root, "rev-parse", "--short", "HEAD")
    if not sha:
        return "unknown"
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return f"{sha}-dirty" if status else sha


def iso_utc(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def arch() -> tuple[str, str]:
    """(rpm arch, deb arch) of this host."""
    machine = platform.machine()
    if machine not in _ARCH:
        raise RuntimeError(f"unsupported architecture {machine!r} (supported: {', '.join(_ARCH)})")
    return _ARCH[machine]


# tool -> (Debian package, Fedora package)
_PROVIDERS = {
    "rpmbuild": ("rpm", "rpm-build"),
    "dpkg-deb": ("dpkg", "dpkg"),
    "rpm2cpio": ("rpm2cpio", "rpm"),
    "cpio": ("cpio", "cpio"),
    "systemd-analyze": ("systemd", "systemd"),
    "lintian": ("lintian", "lintian"),
    "rpmlint": ("rpmlint python3-rpm", "rpmlint"),
    "rpmsign": ("rpm", "rpm-sign"),
    "gpg": ("gnupg", "gnupg2"),
    "gpgv": ("gpgv", "gnupg2"),
    "createrepo_c": ("createrepo-c", "createrepo_c"),
    "apt-ftparchive": ("apt-utils", "apt"),
}


def require(tool: str, *, install: bool = False) -> str:
    """The path of ``tool``; installs its package first when allowed (root with apt-get or dnf).

    Raises ToolMissing with one line saying which package to install.
    """
    found = shutil.which(tool)
    if found:
        return found
    deb_pkg, rpm_pkg = _PROVIDERS.get(tool, (tool, tool))
    if install and os.geteuid() == 0:
        if shutil.which("apt-get"):
            argv = ["apt-get", "install", "-y", "--no-install-recommends", *deb_pkg.split()]
            subprocess.run(argv, check=False)
        elif shutil.which("dnf"):
            subprocess.run(["dnf", "install", "-y", *rpm_pkg.split()], check=False)
        found = shutil.which(tool)
        if found:
            return found
    raise ToolMissing(
        f"{tool} not found: install it (Debian/Ubuntu: apt-get install -y {deb_pkg}; "
        f"Fedora/RHEL: dnf install -y {rpm_pkg})"
    )
