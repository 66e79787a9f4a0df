"""Throwaway Debian roots for the lifecycle tests.

A *base* is a debootstrap of bookworm, built once and cached under ``CACHE`` keyed by everything that
shapes it (suite, variant, mirror, package list). Tests never touch a base: each gets a fresh copy as an
overlayfs mount (the base is the read-only lower layer, the test's writes go to its own upper layer), so a
copy costs nothing and the base can never be damaged, not even by a test that copies /proc by mistake.

Every mount a test makes goes through a ``Mounts`` stack: unmounted in reverse order in ``finally``, and the
teardown asserts that ``/proc/self/mountinfo`` lists nothing under the test's directory any more.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from owrelease.debmirror import host_mirror

CACHE = Path(os.environ.get("OW_LIFECYCLE_CACHE", "/var/cache/openwatch-tests"))
WORK = Path(os.environ.get("OW_LIFECYCLE_WORK", "/var/tmp/openwatch-lifecycle"))
SUITE = "bookworm"
# What every chroot scenario needs beyond minbase: the package's runtime dependencies come on top.
MIN_PACKAGES: tuple[str, ...] = ("openssl", "ca-certificates")
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "HOME": "/root",
}


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    check: bool = True,
    timeout: float = 600,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a host command with an explicit environment; on failure the error carries all output."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else CLEAN_ENV,
        input=input if input is not None else "",
        check=False,
    )
    if check and proc.returncode != 0:
        raise CommandFailed(proc)
    return proc


class CommandFailed(AssertionError):
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.proc = proc
        super().__init__(
            f"command failed (rc={proc.returncode}): {' '.join(map(str, proc.args))}\n"
            f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
        )


# ---------------------------------------------------------------------------------------------- mounts


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, from /proc/self/mountinfo (field 5, octal-escaped)."""
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


class Mounts:
    """A stack of mounts made by one test; ``unmount_all`` undoes them in reverse order."""

    def __init__(self) -> None:
        self._stack: list[Path] = []

    def mount(self, target: Path, *args: str) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        run(["mount", *args, target])
        self._stack.append(target)
        return target

    def unmount_all(self) -> None:
        errors = []
        while self._stack:
            target = self._stack.pop()
            proc = run(["umount", target], check=False)
            if proc.returncode != 0:
                # Busy (a process left inside): detach it so the tree can still be removed, then report.
                run(["umount", "--lazy", target], check=False)
                errors.append(f"{target}: {proc.stderr.strip()}")
        if errors:
            raise AssertionError("could not unmount cleanly: " + "; ".join(errors))


# ---------------------------------------------------------------------------------------------- bases


@dataclass(frozen=True)
class BaseSpec:
    """What a cached base root is made of; ``key`` names it in the cache."""

    name: str
    packages: tuple[str, ...] = ()
    variant: str = "minbase"
    suite: str = SUITE
    mirror: str = field(default_factory=host_mirror)

    @property
    def key(self) -> str:
        blob = json.dumps(
            [self.suite, self.variant, self.mirror, sorted(set(self.packages)), 2], separators=(",", ":")
        )
        return f"{self.name}-{self.suite}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def ensure_base(spec: BaseSpec, *, prepare: Sequence[str] = ()) -> Path:
    """The cached root for ``spec``, built with debootstrap on first use (under a lock: parallel sessions
    wait for one builder). ``prepare`` is a shell script run once in the new root before it is sealed."""
    CACHE.mkdir(parents=True, exist_ok=True)
    final = CACHE / spec.key
    if (final / ".complete").exists():
        return final / "root"
    with open(CACHE / f"{spec.key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / ".complete").exists():
            return final / "root"
        staging = Path(tempfile.mkdtemp(prefix=f".{spec.key}.", dir=CACHE))
        try:
            root = staging / "root"
            # one download cache per base: debootstraps running in parallel must not share one
            debs = CACHE / "debs" / spec.name
            debs.mkdir(parents=True, exist_ok=True)
            cmd = ["debootstrap", f"--variant={spec.variant}", f"--cache-dir={debs}"]
            if spec.packages:
                cmd.append("--include=" + ",".join(sorted(set(spec.packages))))
            started = time.monotonic()
            run([*cmd, spec.suite, root, spec.mirror], timeout=1800)
            if prepare:
                with chroot_mounts(root, staging) as _:
                    for script in prepare:
                        run(["chroot", root, "/bin/sh", "-ec", script], timeout=600)
            # A sealed base carries no apt cache and no machine identity.
            shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
            (root / "var/cache/apt/archives/partial").mkdir(parents=True)
            (root / "etc/machine-id").write_text("")
            assert not mounts_under(staging), mounts_under(staging)
            (staging / "manifest.json").write_text(
                json.dumps(
                    {"spec": spec.__dict__, "seconds": round(time.monotonic() - started, 1)}, default=list
                )
            )
            (staging / ".complete").write_text("")
            os.rename(staging, final)
        except BaseException:
            assert not mounts_under(staging), f"refusing to delete {staging}: still mounted"
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return final / "root"


@contextlib.contextmanager
def chroot_mounts(root: Path, guard: Path) -> Iterator[Mounts]:
    """/proc and a private /dev/pts inside ``root`` for as long as the block runs; ``guard`` is the
    directory that must hold no mount afterwards."""
    mounts = Mounts()
    try:
        mounts.mount(root / "proc", "-t", "proc", "proc")
        mounts.mount(root / "dev/pts", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=620", "devpts")
        yield mounts
    finally:
        mounts.unmount_all()
        left = mounts_under(guard)
        assert not left, f"mounts left under {guard}: {left}"


# ---------------------------------------------------------------------------------------------- fresh roots


@dataclass
class Root:
    """A fresh, writable copy of a base, with /proc mounted: the place a test installs into."""

    path: Path
    workdir: Path
    mounts: Mounts = field(default_factory=Mounts)

    def chroot(
        self,
        *argv: str,
        user: str | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 600,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the root, as root or (``user``) through ``runuser`` inside the root, so
        the user's name, groups and shell are resolved from the root's own /etc."""
        inner = list(argv)
        if user is not None:
            inner = ["runuser", "-u", user, "--", *inner]
        full_env = dict(CLEAN_ENV)
        full_env.update(env or {})
        return run(
            ["chroot", self.path, "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in full_env.items()), *inner],
            check=check,
            timeout=timeout,
            env=CLEAN_ENV,
            input=input,
        )

    def exec(
        self, *argv: str, user: str | None = None, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.chroot(*argv, user=user, check=check, input=input)

    def sh(self, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.chroot("/bin/sh", "-ec", script, check=check)

    def put(self, src: Path, dest: str, mode: int = 0o644) -> str:
        """Copy a host file into the root; returns its path as seen from inside."""
        target = self.path / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        target.chmod(mode)
        return dest

    def file(self, inner: str) -> Path:
        return self.path / inner.lstrip("/")


@contextlib.contextmanager
def fresh_root(base: Path, name: str) -> Iterator[Root]:
    """A copy-on-write copy of ``base`` (overlayfs) with /proc and /dev/pts mounted; everything is
    unmounted and deleted afterwards, even when the test fails."""
    WORK.mkdir(parents=True, exist_ok=True)
    sweep_abandoned()
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=WORK))
    (workdir / "owner.pid").write_text(str(os.getpid()))
    root = Root(path=workdir / "root", workdir=workdir)
    try:
        for d in ("upper", "ovl"):
            (workdir / d).mkdir()
        root.mounts.mount(
            root.path,
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={base},upperdir={workdir / 'upper'},workdir={workdir / 'ovl'}",
        )
        root.mounts.mount(root.path / "proc", "-t", "proc", "proc")
        root.mounts.mount(
            root.path / "dev/pts", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=620", "devpts"
        )
        shutil.copyfile("/etc/resolv.conf", root.path / "etc/resolv.conf")
        # A chroot shares the host's hostname: make it resolvable, as on any installed system (sudo warns
        # "unable to resolve host" otherwise, and that line would pollute what the tests read).
        with open(root.path / "etc/hosts", "a") as hosts:
            hosts.write(f"127.0.1.1\t{os.uname().nodename}\n")
        yield root
    finally:
        # Kill anything a scenario left running inside the root before unmounting it.
        kill_processes_in(root.path)
        root.mounts.unmount_all()
        left = mounts_under(workdir)
        assert not left, f"mounts left under {workdir}: {left}"
        shutil.rmtree(workdir)


def sweep_abandoned() -> list[Path]:
    """Work directories of sessions that died (killed mid-test, no teardown): their processes are killed,
    their mounts undone (innermost first) and the directories removed. Live sessions' are left alone."""
    swept = []
    for workdir in WORK.glob("*.*"):
        try:
            owner = int((workdir / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{owner}").exists():
            continue
        kill_processes_in(workdir / "root")
        for point in sorted(mounts_under(workdir), key=len, reverse=True):
            run(["umount", "--lazy", point], check=False)
        if not mounts_under(workdir):
            run(["rm", "-rf", "--one-file-system", workdir], check=False)
            swept.append(workdir)
    return swept


def kill_processes_in(root: Path) -> list[int]:
    """SIGKILL every process whose root directory is ``root`` (left over by a failed scenario)."""
    killed = []
    target = str(root.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "root") == target:
                os.kill(int(entry.name), 9)
                killed.append(int(entry.name))
        except OSError:
            continue
    return killed


# ---------------------------------------------------------------------------------------------- the bases

# Chroot scenarios (apt, dnf --installroot): minbase plus what the package needs at run time.
# sudo: the migration guide's commands are `sudo -u openwatch openwatch ...`, run as written.
# postgresql-client: what the package recommends, for migrate's pre-migration pg_dump (the upgrades
# back up into the package's /var/lib/openwatch/backups, as the service user).
CHROOT_BASE = BaseSpec("chroot", (*MIN_PACKAGES, "sudo", "postgresql-client"))
# `rpm -i` run by the root's own rpm, as an operator on the box would.
RPM_BASE = BaseSpec("rpm", (*MIN_PACKAGES, "sudo", "rpm", "postgresql-client"))
# A real systemd as PID 1 (systemd-nspawn -b) with PostgreSQL inside the container: the container has its
# own network namespace, so the operator-style DSN (127.0.0.1:5432, scram password) points at this cluster.
SYSTEMD_BASE = BaseSpec(
    "systemd",
    (
        *MIN_PACKAGES,
        "systemd",
        "systemd-sysv",
        "dbus",
        "iproute2",
        "procps",
        "adduser",
        "curl",
        "sudo",
        "postgresql",
    ),
)
SYSTEMD_PREPARE = (
    # postgresql-common picks the first free port at cluster creation and the host's 5432 may be taken
    # while debootstrap runs: inside its own network namespace the container's cluster owns 5432.
    "sed -i 's/^port = .*/port = 5432/' /etc/postgresql/*/main/postgresql.conf",
    "grep -q '^port = 5432' /etc/postgresql/*/main/postgresql.conf",
    # No console getty on the read-only console: it only adds noise to the boot log.
    "systemctl mask console-getty.service getty@tty1.service",
)


# The PostgreSQL compatibility matrix (tests/pgmatrix): per major, the Debian release that ships it, and a
# minbase root holding that release's own server and client, nothing else. The package name pins the
# major (``postgresql`` alone would silently move when a release's default changes). One base name per
# major: parallel debootstraps never share a download cache.
PG_SUITES: dict[int, str] = {13: "bullseye", 15: "bookworm", 17: "trixie", 18: "sid"}


def pg_base(major: int) -> BaseSpec:
    return BaseSpec(f"pg{major}", (f"postgresql-{major}",), suite=PG_SUITES[major])


def base_for(spec: BaseSpec) -> Path:
    return ensure_base(spec, prepare=SYSTEMD_PREPARE if spec.name == "systemd" else ())
