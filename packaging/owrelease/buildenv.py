"""Facts about the source tree and the host that every build step shares. stdlib only."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
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
        if _is_debian():
            with contextlib.suppress(ToolMissing):  # the line below names the package either way
                _apt_install(tuple(deb_pkg.split()))
        elif shutil.which("dnf"):
            subprocess.run(["dnf", "install", "-y", *rpm_pkg.split()], check=False)
        found = shutil.which(tool)
        if found:
            return found
    raise ToolMissing(
        f"{tool} not found: install it (Debian/Ubuntu: apt-get install -y {deb_pkg}; "
        f"Fedora/RHEL: dnf install -y {rpm_pkg})"
    )


# --- the system packages each nox session needs (Debian 12 names): the one list, used by noxfile.py ------
# (.ci/run runs the sessions, so it installs through these lists too)
_BUILD = (
    "rpm",  # rpmbuild
    "dpkg",  # dpkg-deb
    "debootstrap",  # the bullseye build root
    "binutils",  # readelf: the glibc gate
    "git",  # commit id, SOURCE_DATE_EPOCH
    "xz-utils",
    "ca-certificates",
    "gcc",  # the build root's native steps
    "libc6-dev",
    "make",
    "zlib1g-dev",
)
_VERIFY = ("systemd", "lintian", "rpmlint", "python3-rpm", "gnupg", "gpgv")  # gpg: signatures when present
SYSTEM_PACKAGES: dict[str, tuple[str, ...]] = {
    "build": _BUILD,
    "verify": (*_BUILD, *_VERIFY),
    "tests": (
        *_BUILD,
        *_VERIFY,
        # the suite's throwaway PostgreSQL: server binaries and client tools, not the `postgresql`
        # metapackage; CREATECLUSTER_DROPIN keeps the install from making (and starting) a `main` cluster
        "postgresql-15",
        "postgresql-client-15",
        "rpm2cpio",
        "cpio",
        "dnf",  # operator installs from local repositories
        "createrepo-c",
        "apt-utils",
        "systemd-container",  # throwaway roots, a real systemd (nspawn)
        "openssl",  # test certificates
        "chromium",  # the UI browser test
        "strace",  # what the frozen binary writes into its _MEI directory (tests/test_ondemand.py)
    ),
}
# Installing postgresql-NN creates and starts a `main` cluster unless createcluster.conf says otherwise;
# postgresql-common reads this drop-in directory (include_dir in its createcluster.conf).
CREATECLUSTER_DROPIN = Path("/etc/postgresql-common/createcluster.d/openwatch-tests.conf")


def _is_debian() -> bool:
    """/etc/os-release says Debian (or a derivative). $OPENWATCH_OS_RELEASE overrides the file (tests)."""
    path = Path(os.environ.get("OPENWATCH_OS_RELEASE", "/etc/os-release"))
    try:
        fields = dict(
            line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line
        )
    except OSError:
        return False
    ids = {fields.get("ID", "").strip('"'), *fields.get("ID_LIKE", "").strip('"').split()}
    return "debian" in ids and shutil.which("apt-get") is not None


def missing_packages(names: tuple[str, ...]) -> list[str]:
    """The Debian packages among ``names`` that dpkg does not have installed."""
    if shutil.which("dpkg-query") is None:
        return list(names)
    res = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *names],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {ln.split()[0] for ln in res.stdout.splitlines() if ln.endswith(" installed")}
    return [n for n in names if n not in installed]


def ensure_packages(session: str, log: Callable[[str], object] = print) -> None:
    """Install the session's missing system packages (root on Debian), announced in one line.

    Otherwise raises ToolMissing: one line naming the packages and the command to install them.
    """
    missing = missing_packages(SYSTEM_PACKAGES[session])
    if not missing:
        return
    command = f"apt-get install -y --no-install-recommends {' '.join(missing)}"
    if os.geteuid() != 0 or not _is_debian():
        why = "not root" if _is_debian() else "not Debian"
        raise ToolMissing(
            f"{session} needs these Debian packages ({why}): as root run: apt-get update && {command}"
        )
    log(f"{session}: installing system packages: {' '.join(missing)}")
    if any(n.startswith("postgresql-1") for n in missing) and not CREATECLUSTER_DROPIN.exists():
        CREATECLUSTER_DROPIN.parent.mkdir(parents=True, exist_ok=True)
        CREATECLUSTER_DROPIN.write_text(
            "# written by OpenWatch's test set-up: the tests run a throwaway cluster of their own\n"
            "create_main_cluster = false\n",
            encoding="utf-8",
        )
    _apt_install(tuple(missing))
    still = missing_packages(tuple(missing))
    if still:
        raise ToolMissing(f"apt-get installed but dpkg still lacks: {' '.join(still)}")


def _apt_install(names: tuple[str, ...]) -> None:
    """apt-get update + install, quietly; raises ToolMissing with apt's last line when it fails."""
    missing = list(names)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        res = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if res.returncode != 0:
            tail = (res.stderr.strip() or res.stdout.strip()).splitlines()[-1:]
            raise ToolMissing(f"{' '.join(argv)} failed (exit {res.returncode}): {' '.join(tail)}")
