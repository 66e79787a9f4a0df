"""What an operator checks after each step, the same for every way of installing.

A *target* is anything with ``exec(*argv, user=..., check=...)`` and ``file(inner_path)``: a chroot
(``roots.Root``) or a booted container (``nspawn.Container``). Every expectation comes from the
declaration (``packaging/package.toml`` through ``owrelease.model``), never from a second list here.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from owrelease import model as owmodel

from .roots import run


class Target(Protocol):
    def exec(
        self, *argv: str, user: str | None = None, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]: ...

    def file(self, inner: str) -> Path: ...


def load_model() -> owmodel.Package:
    return owmodel.load()


# ---------------------------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str


def passwd(t: Target, name: str) -> PasswdEntry | None:
    proc = t.exec("getent", "passwd", name, check=False)
    if proc.returncode != 0:
        return None
    f = proc.stdout.strip().split(":")
    return PasswdEntry(f[0], int(f[2]), int(f[3]), f[4], f[5], f[6])


def group_gid(t: Target, name: str) -> int | None:
    proc = t.exec("getent", "group", name, check=False)
    return int(proc.stdout.split(":")[2]) if proc.returncode == 0 else None


def login_defs(t: Target, key: str, default: int) -> int:
    text = t.file("/etc/login.defs").read_text()
    m = re.search(rf"^\s*{key}\s+(\d+)", text, re.M)
    return int(m.group(1)) if m else default


def _names(t: Target) -> tuple[dict[int, str], dict[int, str]]:
    users = {
        int(line.split(":")[2]): line.split(":")[0] for line in t.file("/etc/passwd").read_text().splitlines()
    }
    groups = {
        int(line.split(":")[2]): line.split(":")[0] for line in t.file("/etc/group").read_text().splitlines()
    }
    return users, groups


def check_account(t: Target, m: owmodel.Package) -> PasswdEntry:
    """The service user and group exist, are system accounts and cannot log in."""
    acc = m.account
    user = passwd(t, acc.user)
    assert user is not None, f"user {acc.user} does not exist"
    gid = group_gid(t, acc.group)
    assert gid is not None, f"group {acc.group} does not exist"
    assert user.gid == gid, f"{acc.user}'s primary group is {user.gid}, not {acc.group} ({gid})"
    sys_uid_max = login_defs(t, "SYS_UID_MAX", 999)
    sys_gid_max = login_defs(t, "SYS_GID_MAX", 999)
    assert 0 < user.uid <= sys_uid_max, f"uid {user.uid} is not a system uid (<= {sys_uid_max})"
    assert 0 < gid <= sys_gid_max, f"gid {gid} is not a system gid (<= {sys_gid_max})"
    assert user.home == acc.home, user
    assert os.path.basename(user.shell) == "nologin", user
    assert t.file(user.shell).exists(), f"{acc.user}'s shell {user.shell} does not exist"
    # nologin really refuses: a login shell for the account is not possible.
    proc = t.exec("su", "-s", user.shell, "-c", "true", acc.user, check=False)
    assert proc.returncode != 0, "the service account can run a shell"
    return user


# ---------------------------------------------------------------------------------------------- paths


def check_paths(t: Target, m: owmodel.Package, fmt: str) -> dict[str, str]:
    """Every declared path exists with the declared kind, mode, owner and group. Returns problems as a
    dict (empty when all is right) after asserting none: the message lists every difference at once."""
    users, groups = _names(t)
    problems: dict[str, str] = {}
    for e in m.entries_for(fmt):
        p = t.file(e.path)
        try:
            st = p.lstat()
        except FileNotFoundError:
            problems[e.path] = "missing"
            continue
        want_kind = stat.S_ISDIR if e.is_dir else stat.S_ISREG
        if not want_kind(st.st_mode):
            problems[e.path] = f"not a {'directory' if e.is_dir else 'regular file'}"
        got = (
            stat.S_IMODE(st.st_mode),
            users.get(st.st_uid, str(st.st_uid)),
            groups.get(st.st_gid, str(st.st_gid)),
        )
        want = (e.mode, e.owner, e.group)
        if got != want:
            problems[e.path] = f"{got[0]:04o} {got[1]}:{got[2]}, declared {want[0]:04o} {want[1]}:{want[2]}"
    assert not problems, "installed paths differ from package.toml:\n" + "\n".join(
        f"  {k}: {v}" for k, v in problems.items()
    )
    return problems


def check_secrets_access(t: Target, m: owmodel.Package) -> None:
    secrets = m.by_id["secrets"].path
    ok = t.exec("cat", secrets, user=m.account.user, check=False)
    assert ok.returncode == 0, f"{m.account.user} cannot read {secrets}: {ok.stderr}"
    denied = t.exec("cat", secrets, user="nobody", check=False)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr, (
        f"nobody can read {secrets}: rc={denied.returncode} {denied.stderr}"
    )
    key = m.by_id["tls_key"].path
    assert t.exec("cat", key, user=m.account.user, check=False).returncode == 0, (
        f"{key} unreadable by service"
    )
    assert t.exec("cat", key, user="nobody", check=False).returncode != 0, f"nobody can read {key}"


def check_tls(t: Target, m: owmodel.Package) -> str:
    """The generated pair is a valid certificate with its matching key; returns the cert's sha256."""
    cert, key = m.by_id["tls_cert"].path, m.by_id["tls_key"].path
    cert_pub = t.exec("openssl", "x509", "-in", cert, "-noout", "-pubkey").stdout
    key_pub = t.exec("openssl", "pkey", "-in", key, "-pubout").stdout
    assert cert_pub and cert_pub == key_pub, "the TLS key does not match the certificate"
    return sha256(t.file(cert))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_nothing_started(t: Target, m: owmodel.Package, root_on_host: Path | None) -> None:
    """No openwatch process runs and the service's runtime directory does not exist."""
    binary = m.by_id["binary"].path
    if root_on_host is not None:
        running = []
        target = str(root_on_host.resolve()) + binary
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "exe") == target:
                        running.append(entry.name)
                except OSError:
                    continue
        assert not running, f"openwatch processes are running: {running}"
    runtime = m.service["runtime_dir"]
    assert not t.file(runtime).exists(), f"{runtime} exists: something started the service"


def check_binary_runs(t: Target, m: owmodel.Package, version: str) -> str:
    out = t.exec(m.by_id["binary"].path, "--version", user=m.account.user).stdout
    assert out.splitlines()[0] == f"openwatch {version}", out
    return out


# ---------------------------------------------------------------------------------------------- all of it


def check_installed(t: Target, m: owmodel.Package, fmt: str, version: str, root_on_host: Path | None) -> str:
    """Everything that must hold right after an install or upgrade; returns the cert's sha256."""
    check_account(t, m)
    check_paths(t, m, fmt)
    check_secrets_access(t, m)
    cert = check_tls(t, m)
    check_nothing_started(t, m, root_on_host)
    check_binary_runs(t, m, version)
    return cert


def tree_digest(root: Path, paths: list[str]) -> dict[str, tuple[int, int, int, str]]:
    """mode, uid, gid and content hash (or '-' for a directory) of each path, for "nothing changed"."""
    out = {}
    for inner in paths:
        p = root / inner.lstrip("/")
        if not p.exists():
            continue
        for q in sorted([p, *p.rglob("*")]) if p.is_dir() else [p]:
            st = q.lstat()
            out["/" + str(q.relative_to(root))] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                "-" if q.is_dir() else hashlib.sha256(q.read_bytes()).hexdigest(),
            )
    return out


def host_psql(dsn: str, sql: str) -> str:
    """The guide's psql query, run with the host's psql on the operator's DSN, as written."""
    return run(["psql", dsn, "-c", sql], env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}).stdout


def dangling_symlinks(root: Path) -> list[str]:
    """Symlinks under /etc and /usr whose target does not exist inside the root."""
    bad = []
    for top in ("etc", "usr"):
        for dirpath, dirnames, filenames in os.walk(root / top):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                if p.is_symlink():
                    target = os.readlink(p)
                    resolved = root / target.lstrip("/") if target.startswith("/") else p.parent / target
                    if not os.path.lexists(resolved) and "openwatch" in str(p) + target:
                        bad.append(f"{p.relative_to(root)} -> {target}")
    return bad
